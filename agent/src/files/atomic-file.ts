import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lstat, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SMALL_FILE_MODE } from './modes.js';

/**
 * Every file, symlink or directory tree the agent writes reaches its name the same way: built under
 * a temporary name beside it (same directory, so same filesystem, so the rename is atomic), its data
 * fsynced, renamed into place, the parent directory fsynced so the new name survives a crash; on any
 * failure (a tool's error, a cancel) the temporary goes and the destination is left as it was.
 * Temporaries are `.<name>.tmp-<12 hex>`: the stale-temps sweep (transfer/stale-temps.ts) knows
 * them as "other work" and removes one left by a crash once nothing in it changed for a day.
 */
export async function writeAtomically<T>(
  destination: string,
  fill: (temp: string) => Promise<T>,
): Promise<T> {
  const temp = tempNameBeside(destination);
  try {
    const result = await fill(temp);
    await syncTree(temp);
    await replaceIntoPlace(temp, destination);
    return result;
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
}

/** Random suffix length (bytes) of temporary names: unique enough for concurrent writers. */
const TEMP_SUFFIX_BYTES = 6;

/** A hidden name beside `path` for work in progress (`tmp`) or an old directory set aside (`old`). */
export function tempNameBeside(path: string, tag: 'tmp' | 'old' = 'tmp'): string {
  return join(dirname(path), `.${basename(path)}.${tag}-${randomBytes(TEMP_SUFFIX_BYTES).toString('hex')}`);
}

/**
 * A small file (a marker) written atomically with SMALL_FILE_MODE: the agent's umask (AGENT_UMASK)
 * would leave it 0640, and the probes may read it as another user.
 */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  await writeAtomically(path, async (temp) => {
    await writeFile(temp, content, { flag: 'wx', mode: SMALL_FILE_MODE });
    await chmod(temp, SMALL_FILE_MODE);
  });
}

/**
 * Moves a finished, fsynced `temp` to `destination`, replacing whatever is there.
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
    const aside = tempNameBeside(destination, 'old');
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

/** Opened for fsync only: never through a symlink, never blocking on a FIFO. */
const SYNC_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * fsync of what a tool wrote at `path`: a file, or every file and directory of a tree (children
 * first). Symlinks are neither followed nor synced (their text is in the directory, synced after).
 */
export async function syncTree(path: string): Promise<void> {
  const fh = await open(path, SYNC_FLAGS).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ELOOP') return undefined; // a symlink
    // A tool may leave its output owned by another user (libvirt's block copy, as QEMU's user):
    // the tool wrote it through its own descriptor, and its rename is still made durable.
    if (err.code === 'EACCES') return undefined;
    throw err;
  });
  if (!fh) return;
  try {
    const st = await fh.stat();
    if (st.isDirectory()) for (const name of await readdir(path)) await syncTree(join(path, name));
    if (st.isDirectory() || st.isFile()) await fh.sync();
  } finally {
    await fh.close();
  }
}
