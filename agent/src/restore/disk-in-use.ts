import { stat } from 'node:fs/promises';
import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { type ImageFormat, QEMU_IMG } from '../qemu/qemu-img.js';

/**
 * TM restore replaces a powered-off VM's disk (docs/backups.md#tm-restore): one that a running QEMU
 * still holds is BUSY, found the way QEMU itself finds it, by its image lock (`qemu-img info`
 * without -U asks for a shared read lock, which a writer's lock refuses). A missing disk, or one
 * qemu-img cannot read for any other reason (the restore is what repairs it), passes.
 */
export async function refuseIfInUse(
  path: string,
  format: ImageFormat,
  opts: { what: string; signal: AbortSignal },
): Promise<void> {
  if (!(await stat(path).catch(() => undefined))) return;
  try {
    await runTool(QEMU_IMG, ['info', '-f', format, '--output=json', path], opts);
  } catch (err) {
    if (opts.signal.aborted) throw err;
    if (err instanceof StorageError && /lock/i.test(err.message)) {
      throw new StorageError(
        'BUSY',
        `${opts.what}: the disk is in use (a running QEMU holds its lock); restore needs the VM powered off`,
      );
    }
  }
}
