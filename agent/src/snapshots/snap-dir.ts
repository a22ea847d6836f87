import { constants } from 'node:fs';
import { lstat, open, readdir, readlink, realpath, symlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import { makeDirectory } from '../files/make-directory.js';
import type { StoredNames } from '../paths/stored-name.js';

/** Snapshot file names: decimal ids of any length, as OpenNebula writes them ($((ID+1)), no padding). */
const SNAPSHOT_NAME = /^(0|[1-9][0-9]*)$/;
/** `<id>.current`: after a live delete, names the file that now holds snapshot `id`. */
const CURRENT_SUFFIX = '.current';

/** Parses a snapshot file name; undefined for anything else (temporaries, `.current`, the self link). */
export function snapshotIdOf(name: string): number | undefined {
  if (!SNAPSHOT_NAME.test(name)) return undefined;
  const id = Number(name);
  return Number.isSafeInteger(id) ? id : undefined;
}

/** What a snapshot directory holds, read once under the disk's lock. */
export interface SnapDir {
  /** Local path (directories resolved). */
  readonly dir: string;
  /** The directory's own name ("disk.0.snap"), used in messages and relative backing names. */
  readonly short: string;
  /** Numeric entries: id → entry path. */
  readonly files: ReadonlyMap<number, string>;
  /** `<id>.current` pointers: snapshot id → the id of the file that holds it. */
  readonly currents: ReadonlyMap<number, number>;
}

/** A `.current` pointer holds one path; anything longer is not one. */
const POINTER_MAX_BYTES = 4096;

/**
 * Reads a `.current` pointer without following a symlink (a planted `N.current -> /etc/...` would
 * otherwise be read, and quoted in the error) and only when it is a small regular file.
 */
async function readPointer(file: string, what: string): Promise<string> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ELOOP')
        throw new StorageError('BAD_LAYOUT', `${what} is a symlink, not a pointer file`);
      throw err;
    },
  );
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > POINTER_MAX_BYTES) {
      throw new StorageError('BAD_LAYOUT', `${what} is not a pointer file (a small regular file)`);
    }
    return (await fh.readFile('utf8')).trim();
  } finally {
    await fh.close();
  }
}

/** Reads a snap dir; an absent directory reads as empty. */
export async function readSnapDir(dir: string, what: string): Promise<SnapDir> {
  const short = basename(dir);
  const files = new Map<number, string>();
  const currents = new Map<number, number>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return { dir, short, files, currents };
  }
  for (const name of names) {
    const id = snapshotIdOf(name);
    if (id !== undefined) files.set(id, join(dir, name));
  }
  for (const name of names) {
    if (!name.endsWith(CURRENT_SUFFIX)) continue;
    const id = snapshotIdOf(name.slice(0, -CURRENT_SUFFIX.length));
    if (id === undefined) continue;
    // OpenNebula writes the absolute path of a sibling; only its name matters (the prefix is the
    // host's own view of the datastore, which may differ from this agent's).
    const text = await readPointer(join(dir, name), `${what}: ${short}/${name}`);
    const target = snapshotIdOf(basename(text));
    if (target === undefined || !files.has(target)) {
      // Only the pointer's last name is quoted, shortened: its text is the disk owner's to write.
      const quoted = basename(text).slice(0, 64);
      throw new StorageError(
        'BAD_LAYOUT',
        `${what}: ${short}/${name} points at "${quoted}", which is not a snapshot file in ${short}`,
      );
    }
    currents.set(id, target);
  }
  return { dir, short, files, currents };
}

/**
 * The id of the file that holds snapshot `id`: the target of `<id>.current` when there is one;
 * otherwise file `<id>`, unless another snapshot's `.current` claims that file (its own snapshot
 * was deleted live and the file now holds the other one). Undefined: the snapshot is gone.
 */
export function snapshotFileId(snap: SnapDir, id: number): number | undefined {
  const pointed = snap.currents.get(id);
  if (pointed !== undefined) return pointed;
  if (!snap.files.has(id)) return undefined;
  for (const [other, target] of snap.currents) if (other !== id && target === id) return undefined;
  return id;
}

/** The path of `<snap dir>/<id>`. */
export function fileOf(snap: SnapDir, id: number): string {
  return join(snap.dir, String(id));
}

/** "disk.0.snap/3": how a file is named in messages. */
export function shownOf(snap: SnapDir, id: number): string {
  return `${snap.short}/${id}`;
}

export type DiskState =
  | { readonly kind: 'missing' }
  | { readonly kind: 'plain' }
  | { readonly kind: 'linked'; readonly activeId: number; readonly linkText: string };

/**
 * What `disk.N` is: absent, a plain file, or a symlink to `<snap dir>/<id>` (the active layer).
 * A symlink anywhere else, or to a missing file, is BAD_LAYOUT: the snapshot scheme cannot apply.
 * With `names`, an absolute link text under a datastore location (OpenNebula writes the host's
 * DATASTORE_LOCATION path) is read as this host's path for it.
 */
export async function readDisk(
  disk: string,
  snap: SnapDir,
  what: string,
  names?: StoredNames,
): Promise<DiskState> {
  const st = await lstat(disk).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st) return { kind: 'missing' };
  if (st.isFile()) return { kind: 'plain' };
  const name = basename(disk);
  if (!st.isSymbolicLink())
    throw new StorageError('BAD_LAYOUT', `${what}: ${name} is not a file or a symlink`);
  const linkText = await readlink(disk);
  const target = names ? names.localOf(linkText, dirname(disk)) : resolve(dirname(disk), linkText);
  const targetDir = await realpath(dirname(target)).catch(() => undefined);
  const snapDir = await realpath(snap.dir).catch(() => undefined);
  const activeId = snapshotIdOf(basename(target));
  if (targetDir === undefined || targetDir !== snapDir || activeId === undefined) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${what}: ${name} -> ${linkText} does not lead to a numbered file in ${snap.short}`,
    );
  }
  if (!snap.files.has(activeId)) {
    throw new StorageError('BAD_LAYOUT', `${what}: ${name} -> ${linkText}, which does not exist`);
  }
  return { kind: 'linked', activeId, linkText };
}

/**
 * The text of a link from `disk` to `<snap dir>/<id>`, by the one naming rule (relative when the
 * snap dir is in the same root: `disk.0.snap/3` beside the disk, `../../1/<hash>.snap/3` for a
 * persistent image's snap dir; else oned's path).
 */
export function linkTextFor(disk: string, snap: SnapDir, id: number, names: StoredNames): Promise<string> {
  return names.nameFor(fileOf(snap, id), { dir: dirname(disk) });
}

/** Points `disk` at `text` atomically: a new symlink under a temporary name, renamed over the old. */
export async function relink(disk: string, text: string): Promise<void> {
  await writeAtomically(disk, (tmp) => symlink(text, tmp));
}

/**
 * Creates the snap dir and, for relative backing names, its self link `<short> -> .` (so
 * `disk.0.snap/K` resolves from inside the directory too). An existing self link must point at ".".
 */
export async function ensureSnapDir(snap: SnapDir, selfLink: boolean, what: string): Promise<void> {
  await makeDirectory(snap.dir);
  if (!selfLink) return;
  const self = join(snap.dir, snap.short);
  const text = await readlink(self).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    if (err.code === 'EINVAL') return null; // not a symlink
    throw err;
  });
  if (text === '.' || text === './') return;
  if (text !== undefined) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${what}: ${snap.short}/${snap.short} exists and is not a link to "."`,
    );
  }
  await writeAtomically(self, (tmp) => symlink('.', tmp));
}
