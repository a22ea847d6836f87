import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageError, oneLine } from '../../../common/src/errors.js';

export const QEMU_NBD = 'qemu-nbd';
const START_TIMEOUT_MS = 15_000;
const POLL_MS = 20;

export interface NbdExport {
  /** The UNIX socket (in a private temporary directory: socket paths are limited to 108 bytes). */
  readonly socket: string;
  /** `nbd+unix:///?socket=...`, usable as a backing file name. */
  readonly uri: string;
  stop(): Promise<void>;
}

/**
 * A read-only qemu-nbd export of a qcow2 disk (`qemu-nbd -r -t -f qcow2 [-B BITMAP] -k SOCK DISK`),
 * exposing `qemu:dirty-bitmap:BITMAP` when a bitmap is named. The server is this call's own child:
 * stop() (and the signal) end it by its PID, nothing else.
 */
export async function startNbdExport(
  disk: string,
  bitmap: string | undefined,
  what: string,
  signal: AbortSignal,
): Promise<NbdExport> {
  const dir = await mkdtemp(join(tmpdir(), 'one-backup-nbd-'));
  const socket = join(dir, 'nbd.sock');
  const args = ['-r', '-t', '-f', 'qcow2', '-k', socket, ...(bitmap ? ['-B', bitmap] : []), disk];
  const child: ChildProcess = spawn(QEMU_NBD, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LANG: 'C', LC_ALL: 'C' },
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', (err) => {
      exited = true;
      stderr ||= err.message;
      resolve();
    });
  });
  const onAbort = (): void => void child.kill('SIGTERM');
  signal.addEventListener('abort', onAbort, { once: true });
  const stop = async (): Promise<void> => {
    signal.removeEventListener('abort', onAbort);
    if (!exited) child.kill('SIGTERM');
    await exit;
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = performance.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exited || signal.aborted) {
      await stop();
      throw new StorageError(
        'TOOL_FAILED',
        `${what}: ${QEMU_NBD} ${signal.aborted ? 'was cancelled' : `failed: ${oneLine(stderr) || 'exited'}`}`,
      );
    }
    if (
      await stat(socket).then(
        () => true,
        () => false,
      )
    )
      break;
    if (performance.now() > deadline) {
      await stop();
      throw new StorageError(
        'TOOL_FAILED',
        `${what}: ${QEMU_NBD} did not listen within ${START_TIMEOUT_MS} ms`,
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return { socket, uri: `nbd+unix:///?socket=${socket}`, stop };
}
