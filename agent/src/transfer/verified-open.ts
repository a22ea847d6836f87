import { constants } from 'node:fs';
import { open, readlink, type FileHandle } from 'node:fs/promises';
import { StorageError } from '../../../common/src/errors.js';

/** Device and inode of a file: what OpenSend saw, checked again when the file is read. */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
}

/**
 * O_NOFOLLOW: a final component swapped for a symlink fails (ELOOP) instead of being followed.
 * O_NONBLOCK: a FIFO swapped in does not hang the open (it has no effect on regular files).
 * O_NOCTTY: a terminal swapped in never becomes ours.
 */
export const READ_FLAGS =
  constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;
const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/**
 * The path of an open descriptor for our own later calls: the kernel resolves it to the open file
 * itself, not by name, so nothing swapped on the way to the file since it was opened is followed.
 * Not for child processes: once the agent has dropped root its /proc entries are root's, so a tool
 * gets the descriptor itself instead (runTool's `fd`, INHERITED_FD_PATH).
 */
export function descriptorPath(fh: FileHandle): string {
  return `/proc/${process.pid}/fd/${fh.fd}`;
}

/**
 * Opens the regular file at `path` (a real path: no symlink in any component) for reading and
 * proves it is the file meant: the kernel's name for the open descriptor must be `path` itself
 * (so no component was swapped for a symlink on the way, and the file is where it was confined),
 * and, when `expected` is given, its device and inode must be those recorded by `recordedBy`
 * (OpenSend, ExportImage). `label` names the file in errors (the oned-view path). The caller
 * closes the handle.
 */
export async function openVerifiedFile(
  path: string,
  label: string,
  expected?: FileIdentity,
  recordedBy = 'OpenSend',
): Promise<{ fh: FileHandle; identity: FileIdentity; size: number; mtimeNs: bigint }> {
  const changed = (why: string): StorageError =>
    new StorageError('TRANSFER_FAILED', `${label} changed since ${recordedBy} (${why}): refused`);
  let fh: FileHandle;
  try {
    fh = await open(path, READ_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw changed('it is now a symlink');
    if (code === 'ENOENT' || code === 'ENOTDIR') throw changed('it is gone');
    throw err;
  }
  try {
    const st = await fh.stat({ bigint: true });
    if (!st.isFile()) throw changed('it is no longer a regular file');
    if (expected && (st.dev !== expected.dev || st.ino !== expected.ino))
      throw changed('another file is at its path now (device/inode differ)');
    await expectDescriptorAt(fh, path, label);
    return { fh, identity: { dev: st.dev, ino: st.ino }, size: Number(st.size), mtimeNs: st.mtimeNs };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/**
 * Opens the directory at `path` so that later work inside it goes through the descriptor
 * (descriptorPath) and cannot be redirected by a symlink swapped in for it or for an ancestor.
 * Refuses a directory whose real path is not `real` (by default `path`, then a real path itself).
 */
export async function openVerifiedDirectory(path: string, label: string, real = path): Promise<FileHandle> {
  const fh = await open(path, DIRECTORY_FLAGS).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ELOOP' || err.code === 'ENOTDIR')
      throw new StorageError(
        'PATH_OUTSIDE_ROOTS',
        `${label}: the directory is now a symlink or not a directory`,
      );
    throw err;
  });
  try {
    await expectDescriptorAt(fh, real, label);
    return fh;
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** The kernel's name for the file `fh` is open on (its real path when it was opened). */
export function openedPath(fh: FileHandle): Promise<string> {
  return readlink(`/proc/self/fd/${fh.fd}`);
}

async function expectDescriptorAt(fh: FileHandle, path: string, label: string): Promise<void> {
  const real = await openedPath(fh);
  if (real !== path)
    throw new StorageError(
      'PATH_OUTSIDE_ROOTS',
      `${label}: opened ${real}, not ${path}: a directory on its path was replaced by a symlink`,
    );
}
