import { realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import { isInside } from '../paths/roots.js';
import type { NameAnchor, StoredNames } from '../paths/stored-name.js';
import type { ChainLayer } from '../qemu/safe-chain.js';
import { convert, rebase } from '../qemu/qemu-img.js';
import type { CopyLocal } from '../rpc/context.js';
import { type Confine, type VerifyOptions, verifyChain } from './chain-safety.js';
import type { SnapDir } from './snap-dir.js';

/**
 * Copying a snap dir under a new name (OpenNebula's `ln.ssh` and `mvds.ssh` with
 * `rebase_backing_files`): the numbered entries are copied dereferenced, and each qcow2 file's
 * backing name is rewritten to name the copy of the entry it was backed by.
 */

/** The chains of every numbered entry of a snap dir: id → layers (the entry first). */
export type SnapChains = ReadonlyMap<number, readonly ChainLayer[]>;

/** Reads the whole validated chain of every numbered entry (safe-chain.ts; each entry as `opts.format`). */
export async function readSnapChains(
  files: ReadonlyMap<number, string>,
  opts: VerifyOptions,
): Promise<SnapChains> {
  const chains = new Map<number, readonly ChainLayer[]>();
  for (const [id, entry] of [...files].sort((a, b) => a[0] - b[0])) {
    chains.set(id, await verifyChain(entry, opts));
  }
  return chains;
}

/** All layers of all chains, for the checks that the copy does not replace what it reads. */
export function allLayers(chains: SnapChains): ChainLayer[] {
  return [...chains.values()].flat();
}

export interface SnapCopy {
  /** The snap dir read; `files` may be replaced by a single `0 -> <image>` entry. */
  readonly from: Pick<SnapDir, 'dir' | 'currents'> & { readonly files: ReadonlyMap<number, string> };
  readonly chains: SnapChains;
  /** The directory the files are written into (a temporary name the caller made). */
  readonly to: string;
  /** Where that directory will live once renamed: what the backing names and `.current` name. */
  readonly finalDir: string;
  /** What the copies' backing names are relative to (paths/stored-name.ts). */
  readonly anchor: NameAnchor;
  readonly names: StoredNames;
  readonly copyLocal: CopyLocal;
  readonly what: string;
  readonly signal: AbortSignal;
}

/**
 * Copies every numbered entry (its real file, holes kept) to `<to>/<id>` and rewrites the backing
 * name of each qcow2 copy with `qemu-img rebase -u` to the name of `<finalDir>/<backing entry id>`
 * as seen from `anchor`.
 * A file backed by something that is not an entry of the snap dir is flattened instead
 * (`qemu-img convert`), so the copy never reads outside its own directory. `<id>.current` pointers
 * are written again naming files of `finalDir`. Returns the ids copied, ascending.
 */
export async function copySnapFiles(c: SnapCopy): Promise<number[]> {
  const opts = { what: c.what, signal: c.signal };
  const byReal = new Map<string, number>();
  for (const [id, entry] of c.from.files) byReal.set(await realpath(entry), id);
  const ids = [...c.from.files.keys()].sort((a, b) => a - b);
  for (const id of ids) {
    const entry = c.from.files.get(id) ?? '';
    const [top, backing] = c.chains.get(id) ?? [];
    const dest = join(c.to, String(id));
    const backingId = backing === undefined ? undefined : byReal.get(await realpath(backing.filename));
    if (top?.format === 'qcow2' && backing !== undefined && backingId === undefined) {
      await convert(entry, dest, { ...opts, sourceFormat: 'qcow2', format: 'qcow2', sparse: true });
      continue;
    }
    await c.copyLocal(await realpath(entry), dest, { sparse: true, signal: c.signal });
    if (top?.format === 'qcow2' && backing !== undefined && backingId !== undefined) {
      await rebase(dest, {
        ...opts,
        unsafe: true,
        backing: {
          name: await c.names.nameFor(join(c.finalDir, String(backingId)), c.anchor),
          format: backing.format,
        },
      });
    }
  }
  for (const [id, target] of c.from.currents) {
    if (!c.from.files.has(target)) continue;
    const name = await c.names.nameFor(join(c.finalDir, String(target)), { dir: c.finalDir });
    await writeFile(join(c.to, `${id}.current`), `${name}\n`);
  }
  return ids;
}

/** A Confine that refuses any layer whose real path is not inside `dir`. */
export function confineTo(dir: string, what: string, shown: string): Confine {
  return async (file: string) => {
    const real = await realpath(file);
    const top = await realpath(dir);
    if (!isInside(real, top)) {
      throw new StorageError('BAD_LAYOUT', `${what}: the chain reads ${real}, which is outside ${shown}`);
    }
  };
}
