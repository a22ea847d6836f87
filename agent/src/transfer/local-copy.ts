import type { Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import type { Progress } from '../jobs/job-registry.js';

export interface LocalCopyOptions {
  /** False gives a fully allocated copy (OpenNebula's SPARSE=no). */
  sparse: boolean;
  signal?: AbortSignal;
  /**
   * Where progress goes (CallContext.progress, phase "copying"): total is the source's apparent
   * size, done the apparent size of the copy so far, read from the temporary every
   * PROGRESS_POLL_MS (cp says nothing while it works).
   */
  progress?: ((p: Progress) => void) | undefined;
}

/** How often a running copy's temporary is measured for progress. */
const PROGRESS_POLL_MS = 500;

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
      const stop = opts.progress ? measureWhileCopying(temp, bytes, opts.progress) : undefined;
      try {
        await runTool('cp', ['-a', sparse, '--no-target-directory', '--', source, temp], {
          what,
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
      } finally {
        stop?.();
      }
      opts.signal?.throwIfAborted();
      opts.progress?.({ done: bytes, total: bytes });
    });
  } catch (err) {
    if (err instanceof StorageError) throw err;
    if ((err as Error).name === 'AbortError') throw new StorageError('TRANSFER_FAILED', `${what}: cancelled`);
    throw asStorageError(err, 'copy to', destination);
  }
  return { bytes };
}

/** Reports the apparent bytes under `temp` every PROGRESS_POLL_MS until the returned stop is called. */
function measureWhileCopying(temp: string, total: number, report: (p: Progress) => void): () => void {
  report({ done: 0, total, phase: 'copying' });
  let busy = false;
  let stopped = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    lstat(temp)
      .then((st) => fileBytes(temp, st))
      .then(
        (done) => stopped || report({ done: Math.min(done, total) }),
        () => undefined, // not there yet, or a file cp is renaming: the next tick reads again
      )
      .finally(() => (busy = false));
  }, PROGRESS_POLL_MS);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
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
