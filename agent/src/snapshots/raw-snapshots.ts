import { lstat, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import type { CopyLocal } from '../rpc/context.js';
import { makeDirectory } from '../files/make-directory.js';

/** A raw disk's snapshot files: full copies `<snap dir>/<id>` (every OpenNebula driver). */
export interface RawSnapshotTarget {
  /** The disk's file: the target of a disk.N symlink (the link is never replaced). */
  readonly diskFile: string;
  readonly snapDir: string;
  /** "disk.0.snap", for messages. */
  readonly short: string;
  readonly what: string;
  /** Hole-keeping copy to a temporary name and rename (cp --sparse=always), never fs.copyFile. */
  readonly copy: CopyLocal;
  readonly signal?: AbortSignal;
}

/** Copies the disk to `<snap dir>/<id>`. An existing snapshot is kept: a repeat copies nothing. */
export async function createRawSnapshot(t: RawSnapshotTarget, id: number): Promise<{ created: boolean }> {
  const snapFile = join(t.snapDir, String(id));
  if (await regularFile(t, snapFile, `${t.short}/${id}`)) return { created: false };
  if (!(await regularFile(t, t.diskFile, 'the disk'))) {
    throw new StorageError('NOT_FOUND', `${t.what}: the disk does not exist`);
  }
  await makeDirectory(t.snapDir);
  await t.copy(t.diskFile, snapFile, copyOptions(t));
  return { created: true };
}

/** Replaces the disk's file by a copy of `<snap dir>/<id>` (written beside it, then renamed). */
export async function revertRawSnapshot(t: RawSnapshotTarget, id: number): Promise<void> {
  const snapFile = join(t.snapDir, String(id));
  if (!(await regularFile(t, snapFile, `${t.short}/${id}`))) {
    throw new StorageError('NOT_FOUND', `${t.what}: snapshot ${id} does not exist (no ${t.short}/${id})`);
  }
  await t.copy(snapFile, t.diskFile, copyOptions(t));
}

/** Removes `<snap dir>/<id>`; an absent snapshot is a success (existed=false). */
export async function deleteRawSnapshot(t: RawSnapshotTarget, id: number): Promise<{ existed: boolean }> {
  const snapFile = join(t.snapDir, String(id));
  if (!(await regularFile(t, snapFile, `${t.short}/${id}`))) return { existed: false };
  await rm(snapFile);
  return { existed: true };
}

/** True for a regular file, false when absent; anything else (a directory, a symlink) is BAD_LAYOUT. */
async function regularFile(t: RawSnapshotTarget, path: string, shown: string): Promise<boolean> {
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st) return false;
  if (!st.isFile()) {
    throw new StorageError('BAD_LAYOUT', `${t.what}: ${shown} is not a regular file`);
  }
  return true;
}

function copyOptions(t: RawSnapshotTarget): { sparse: boolean; signal?: AbortSignal } {
  return { sparse: true, ...(t.signal ? { signal: t.signal } : {}) };
}
