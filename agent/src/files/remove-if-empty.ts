import { rmdir } from 'node:fs/promises';

/** What removeIfEmpty found: the directory went, was not there, or stays (it holds something). */
export type RemoveOutcome = 'removed' | 'absent' | 'kept';

/**
 * Why a directory stays: it holds something (ENOTEMPTY, or EEXIST on some filesystems), something
 * is mounted on it (EBUSY), or it is not a directory at all (a file or a symlink in its place:
 * rmdir never follows a link).
 */
const KEPT = new Set(['ENOTEMPTY', 'EEXIST', 'EBUSY', 'ENOTDIR']);

/**
 * `rmdir` of a directory an action made, only while it is empty: what another call put there
 * meanwhile stays, and so does the directory holding it. Any other failure (EACCES, EROFS, EIO) is
 * thrown.
 */
export async function removeIfEmpty(dir: string): Promise<RemoveOutcome> {
  try {
    await rmdir(dir);
    return 'removed';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'ENOENT') return 'absent';
    if (KEPT.has(code)) return 'kept';
    throw err;
  }
}
