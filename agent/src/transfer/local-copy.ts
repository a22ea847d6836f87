import type { Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';

export interface LocalCopyOptions {
  /** False gives a fully allocated copy (OpenNebula's SPARSE=no). */
  sparse: boolean;
  signal?: AbortSignal;
}

/**
 * Same-host copy of a file, symlink or directory tree. The kernel does the work through `cp -a`
 * (modes, times and symlinks kept; symlinks never followed): `--sparse=always` finds the data with
 * SEEK_DATA/SEEK_HOLE and leaves holes as holes, `--sparse=never` writes every byte so the copy is
 * fully allocated. The copy lands under a temporary sibling name and is renamed into place only
 * when complete, so a failure (a full disk, a cancel) leaves the destination as it was and no
 * temporary behind. Returns the apparent bytes of the regular files copied.
 */
export async function copyLocal(
  source: string,
  destination: string,
  opts: LocalCopyOptions,
): Promise<{ bytes: number }> {
  const what = `copy ${source} to ${destination}`;
  let bytes: number;
  try {
    bytes = await fileBytes(source, await lstat(source));
  } catch (err) {
    throw asStorageError(err, 'copy: cannot read source', source);
  }
  try {
    await writeAtomically(destination, async (temp) => {
      const sparse = opts.sparse ? '--sparse=always' : '--sparse=never';
      await runTool('cp', ['-a', sparse, '--no-target-directory', '--', source, temp], {
        what,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      opts.signal?.throwIfAborted();
    });
  } catch (err) {
    if (err instanceof StorageError) throw err;
    if ((err as Error).name === 'AbortError') throw new StorageError('TRANSFER_FAILED', `${what}: cancelled`);
    throw asStorageError(err, 'copy to', destination);
  }
  return { bytes };
}

async function fileBytes(path: string, st: Stats): Promise<number> {
  if (st.isFile()) return st.size;
  if (!st.isDirectory()) return 0;
  let total = 0;
  for (const name of await readdir(path)) {
    const child = join(path, name);
    total += await fileBytes(child, await lstat(child));
  }
  return total;
}
