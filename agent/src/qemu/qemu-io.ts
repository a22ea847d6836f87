import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import type { ImageFormat, QemuOptions } from './qemu-img.js';

export const QEMU_IO = 'qemu-io';
/** Requests per qemu-io process (each is one argv entry). */
const REQUESTS_PER_PROCESS = 2_000;

export interface QemuIoOptions extends QemuOptions {
  /** -C: copy-on-read, so each read writes what it read into the image. */
  copyOnRead?: boolean;
  /** -r: open the image read-only. */
  readOnly?: boolean;
  /** The image's format (-f); qcow2 unless said. */
  format?: ImageFormat;
}

/**
 * `qemu-io [-C] [-r] -f FMT FILE -c CMD...`, in batches. qemu-io reports a failed request on stdout
 * and still exits 0: any "fail" or "error" there is TOOL_FAILED.
 */
export async function qemuIo(file: string, commands: readonly string[], opts: QemuIoOptions): Promise<void> {
  const tool = {
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.what ? { what: opts.what } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
  };
  for (let i = 0; i < commands.length; i += REQUESTS_PER_PROCESS) {
    const batch = commands.slice(i, i + REQUESTS_PER_PROCESS);
    const { stdout } = await runTool(
      QEMU_IO,
      [
        ...(opts.copyOnRead ? ['-C'] : []),
        ...(opts.readOnly ? ['-r'] : []),
        ...['-f', opts.format ?? 'qcow2', file],
        ...batch.flatMap((c) => ['-c', c]),
      ],
      tool,
    );
    if (/fail|error/i.test(stdout)) {
      throw new StorageError(
        'TOOL_FAILED',
        `${opts.what ?? file}: ${QEMU_IO} failed: ${stdout.trim().split('\n')[0] ?? ''}`,
      );
    }
  }
}
