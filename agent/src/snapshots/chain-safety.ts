import { lstat, readlink, realpath } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import type { ImageFormat } from '../qemu/qemu-img.js';
import { type ChainLayer, type SafeChainOptions, readChain } from '../qemu/safe-chain.js';

/** Linux's own limit on symlinks followed while resolving one path. */
const MAX_SYMLINK_HOPS = 40;

/**
 * The directory entry a path names: its directory resolved (self links such as
 * `disk.0.snap/disk.0.snap -> .` included), the final component kept. Two names for the same entry
 * compare equal; a symlink and its target do not. Replacing an entry by rename() changes what this
 * names, never what a symlink there pointed at.
 */
export async function entryPath(path: string): Promise<string> {
  const dir = await realpath(dirname(path));
  return `${dir === '/' ? '' : dir}/${basename(path)}`;
}

/** Every entry opened on the way from `path` to a real file, following symlinks one hop at a time. */
export async function entryPathsOf(path: string): Promise<string[]> {
  const entries: string[] = [];
  let current = path;
  for (let hop = 0; hop < MAX_SYMLINK_HOPS; hop++) {
    const entry = await entryPath(current);
    entries.push(entry);
    const st = await lstat(entry).catch(() => undefined);
    if (!st?.isSymbolicLink()) return entries;
    current = resolve(dirname(entry), await readlink(entry));
  }
  return entries;
}

/** All entries the layers of a chain are read through. */
export async function chainEntries(layers: readonly ChainLayer[]): Promise<Set<string>> {
  const all = new Set<string>();
  for (const layer of layers) for (const e of await entryPathsOf(layer.filename)) all.add(e);
  return all;
}

/**
 * Refuses to put a new image at `target` on top of `backingLayers`: if any layer is read through
 * the entry `target`, the new image would be its own backing file (OpenNebula issues #2189/#6663
 * came from writing an overlay through `.snap/0 -> IMAGE` onto the image itself).
 */
export async function assertNotInChain(
  target: string,
  backingLayers: readonly ChainLayer[],
  what: string,
  shown: string,
): Promise<void> {
  const entry = await entryPath(target);
  if ((await chainEntries(backingLayers)).has(entry)) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${what}: refusing to write ${shown}: it is a layer of its own new backing chain`,
    );
  }
}

/** Refuses a file the agent must not read (e.g. a layer outside a temporary directory). */
export type Confine = (file: string) => Promise<void>;

export interface VerifyOptions extends SafeChainOptions {
  /** The format of `path` as oned knows it; backing layers take theirs from their parent's header. */
  format: ImageFormat;
}

/**
 * Reads the whole chain of `path` one validated layer at a time (agent/src/qemu/safe-chain.ts: no
 * loop, no network or json: name, every layer in a legitimate place and passing `confine`): run
 * before a chain is built on or read into another file, and after every change, so a broken chain
 * is reported at once.
 */
export async function verifyChain(path: string, opts: VerifyOptions): Promise<ChainLayer[]> {
  return readChain(path, opts.format, opts);
}
