import { lstat, rename, rm } from 'node:fs/promises';
import { StorageError } from '../../../common/src/errors.js';
import { syncTree } from '../../../common/src/files/atomic-file.js';
import { tempNameBeside } from '../../../common/src/files/temp-name.js';
import { WHOLE_DISK_TIMEOUT_MS } from '../../../common/src/tools/run-tool.js';
import type { Progress } from '../jobs/job-registry.js';
import { type ImageFormat, bitmap, convert, describe } from '../qemu/qemu-img.js';

/** The received file made ready to take a disk's place (docs/backups.md#tm-restore). */
export interface RestoredFile {
  /** Local path of the file to put in place: the staging name (holding the raw conversion for a raw disk). */
  readonly file: string;
  readonly virtualSize: number;
  readonly bitmapsRemoved: string[];
}

/**
 * Checks what Receive wrote at `staging` and prepares it: opened as qcow2 only (a file that is no
 * qcow2, or that has a backing or external data file, is BAD_IMAGE: a restore point is one
 * standalone file), every persistent bitmap removed (the restored disk starts no CBT chain; the
 * next backup is a full one), and converted to raw when the disk is raw (the raw copy, made beside
 * it, replaces it under its name). The caller removes the file when anything after fails.
 */
export async function prepareRestoredFile(
  staging: string,
  format: ImageFormat,
  opts: {
    what: string;
    shown: string;
    signal: AbortSignal;
    /** Where the raw conversion reports progress (phase "converting"). */
    progress?: ((p: Progress) => void) | undefined;
  },
): Promise<RestoredFile> {
  const st = await lstat(staging).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT')
      throw new StorageError('NOT_FOUND', `${opts.what}: the received file ${opts.shown} does not exist`);
    throw err;
  });
  if (!st.isFile()) {
    throw new StorageError(
      'BAD_IMAGE',
      `${opts.what}: the received file ${opts.shown} is not a regular file`,
    );
  }
  const q = { what: opts.what, signal: opts.signal };
  const info = await describe(staging, 'qcow2', q).catch((err: unknown) => {
    if (opts.signal.aborted) throw err;
    throw new StorageError(
      'BAD_IMAGE',
      `${opts.what}: the received file ${opts.shown} is not a qcow2 image`,
      {
        cause: err,
      },
    );
  });
  if (info.backingFilename !== undefined || info.dataFile !== undefined) {
    throw new StorageError(
      'BAD_IMAGE',
      `${opts.what}: the received file ${opts.shown} is not standalone (it names a backing or data file)`,
    );
  }
  for (const name of info.bitmaps) await bitmap(staging, 'remove', name, q);
  if (format === 'raw') {
    const raw = tempNameBeside(staging);
    try {
      await convert(staging, raw, {
        ...q,
        sourceFormat: 'qcow2',
        format: 'raw',
        sparse: true,
        timeoutMs: WHOLE_DISK_TIMEOUT_MS,
        progress: opts.progress,
        progressTotal: info.virtualSize,
      });
      await syncTree(raw);
      // The raw copy takes the staging name: a disk never links to a temporary's name.
      await rename(raw, staging);
    } catch (err) {
      await rm(raw, { force: true });
      throw err;
    }
  }
  await syncTree(staging);
  return { file: staging, virtualSize: info.virtualSize, bitmapsRemoved: info.bitmaps };
}
