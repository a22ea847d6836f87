import { constants } from 'node:fs';
import { chmod, lstat, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { tempNameBeside } from './temp-name.js';

/**
 * Every file, symlink, directory tree or socket the project writes reaches its name the same way
 * (the agent's disks and markers, backup files, installed shims, certificates and keys, the
 * coordinator's socket): built under a temporary name beside it (same directory, so same
 * filesystem, so the rename is atomic), its data fsynced, renamed into place, the parent directory
 * fsynced so the new name survives a crash; on any failure (a tool's error, a cancel) the temporary
 * goes and the destination is left as it was. Temporaries are `.<name>.tmp-<12 hex>`
 * (temp-name.ts): the agent's stale-temps sweep (agent/src/transfer/stale-temps.ts) knows them as
 * "other work" and removes one left by a crash once nothing in it changed for a day.
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

/**
 * A file whose whole content is at hand, written atomically. With `mode`, the file gets exactly
 * that mode whatever the umask (which filters the mode a file is created with): a shim must be
 * executable, a marker readable by the probes; without it, the umask decides as for any new file.
 */
export async function writeFileAtomic(
  path: string,
  content: string | Uint8Array,
  options: { mode?: number } = {},
): Promise<void> {
  const { mode } = options;
  await writeAtomically(path, async (temp) => {
    await writeFile(temp, content, { flag: 'wx', ...(mode === undefined ? {} : { mode }) });
    if (mode !== undefined) await chmod(temp, mode);
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
 * first). Symlinks are neither followed nor synced (their text is in the directory, synced after),
 * nor are sockets (they hold no data).
 */
export async function syncTree(path: string): Promise<void> {
  const fh = await open(path, SYNC_FLAGS).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ELOOP') return undefined; // a symlink
    if (err.code === 'ENXIO') return undefined; // a socket
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
