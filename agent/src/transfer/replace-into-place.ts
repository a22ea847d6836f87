import { randomBytes } from 'node:crypto';
import { lstat, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A sibling name for work in progress: same directory, so same filesystem, so rename is atomic. */
export function siblingTempPath(destination: string, tag: 'tmp' | 'old' = 'tmp'): string {
  return join(dirname(destination), `.${basename(destination)}.${tag}-${randomBytes(6).toString('hex')}`);
}

/**
 * Moves a finished, verified `temp` to `destination`, replacing whatever is there.
 * A file (or symlink) over a file is one rename(2): readers see the old or the new, never a mix.
 * A directory cannot be renamed over a non-empty one, so the old one is renamed aside first, the new
 * one renamed in, and only then the old one removed; if the second rename fails, the old one is
 * put back. The parent directory is fsynced so the new name survives a crash.
 */
export async function replaceIntoPlace(temp: string, destination: string): Promise<void> {
  const existing = await lstat(destination).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  const incoming = await lstat(temp);
  if (!existing || (!existing.isDirectory() && !incoming.isDirectory())) {
    await rename(temp, destination);
  } else {
    const aside = siblingTempPath(destination, 'old');
    await rename(destination, aside);
    try {
      await rename(temp, destination);
    } catch (err) {
      await rename(aside, destination).catch(() => undefined);
      throw err;
    }
    await rm(aside, { recursive: true, force: true });
  }
  await fsyncPath(dirname(destination));
}

/** fsync of a file or directory by path (directories are opened read-only for it). */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
