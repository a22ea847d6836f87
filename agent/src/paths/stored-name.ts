import { realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, relative, resolve } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import type { Roots } from './roots.js';

/**
 * Where a stored name is resolved from. For a symlink, the directory holding it (the kernel resolves
 * a link's text there). For a backing name, the directory of the path the image is opened through:
 * qemu and libvirt join a relative backing name to the dirname of the name they opened the image
 * by, without resolving symlinks first (docs/architecture.md, "Names written into metadata").
 */
export interface NameAnchor {
  readonly dir: string;
  /**
   * The name of a self link `dir/<selfLink> -> .` (a snap dir's `disk.N.snap/disk.N.snap`). The name
   * then starts with it, so it resolves both from `dir` and from `dir`'s parent: files of a snap dir
   * are opened through `disk.N` in the VM directory and through their own directory.
   */
  readonly selfLink?: string;
}

/** How this agent writes and reads the names stored in symlinks and image headers. */
export interface StoredNames {
  /** The name to store for `target` (a local path), as seen from `from`. */
  nameFor(target: string, from: NameAnchor): Promise<string>;
  /** Where a stored name leads on this host, read from the directory `fromDir`. */
  localOf(name: string, fromDir: string): string;
}

/** The StoredNames of an agent: the rule below for writing, Roots' translation for reading. */
export function storedNames(roots: Roots): StoredNames {
  return { nameFor: nameFor(roots), localOf: (name, fromDir) => localOfStored(roots, name, fromDir) };
}

/**
 * The one rule for every name the agent writes into a symlink or an image header: relative to the
 * anchor when the target lies in the same datastore root (it then resolves on every host, whatever
 * directory each maps the location to, and for QEMU and libvirt too); otherwise the path as oned
 * names it (under DATASTORE_LOCATION), which agents translate when they read it
 * (Roots.localOfStored). Never an agent's local root. `target` names an entry: a final symlink
 * component is named itself, not followed.
 */
function nameFor(roots: Roots): StoredNames['nameFor'] {
  return async (target: string, from: NameAnchor): Promise<string> => {
    const realTarget = await realEntry(target);
    const realDir = await realpath(from.dir).catch(() => realEntry(from.dir));
    const [targetRoot, dirRoot] = await Promise.all([
      roots.rootOfLocal(realTarget),
      roots.rootOfLocal(realDir),
    ]);
    if (targetRoot !== undefined && targetRoot === dirRoot) {
      const rel = relative(realDir, realTarget) || '.';
      return from.selfLink === undefined ? rel : `${from.selfLink}/${rel}`;
    }
    const oned = await roots.onedPathOf(realTarget);
    if (oned === undefined) {
      throw new StorageError(
        'PATH_OUTSIDE_ROOTS',
        `${realTarget} is outside the datastore roots: no name can be stored for it`,
      );
    }
    return oned;
  };
}

/**
 * Where a name read from a symlink or a backing header leads on this host, from the directory it
 * is resolved against: relative names as the kernel and qemu resolve them, absolute names under a
 * datastore location (oned's view, as OpenNebula's drivers and the fallback above write them)
 * translated to this host's directory.
 */
function localOfStored(roots: Roots, name: string, fromDir: string): string {
  return isAbsolute(name) ? roots.localOfStored(name) : resolve(fromDir, name);
}

/** The real path of an entry: its deepest existing ancestor resolved, the rest kept as written. */
async function realEntry(path: string): Promise<string> {
  const tail: string[] = [basename(path)];
  let dir = dirname(path);
  for (;;) {
    const real = await realpath(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
      throw err;
    });
    if (real !== undefined) return resolve(real, ...tail);
    if (dir === dirname(dir)) return resolve(path);
    tail.unshift(basename(dir));
    dir = dirname(dir);
  }
}
