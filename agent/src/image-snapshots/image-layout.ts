import { lstat, readlink, realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import type { StoredNames } from '../paths/stored-name.js';
import type { ChainScope } from '../qemu/layer-places.js';
import type { ImageFormat } from '../qemu/qemu-img.js';
import { type ChainLayer, readChain } from '../qemu/safe-chain.js';
import type { Progress } from '../jobs/job-registry.js';
import type { CopyLocal } from '../rpc/context.js';
import { entryPath, verifyChain } from '../snapshots/chain-safety.js';
import { backingIds } from './snap-graph.js';
import { refuseQcow2InRawCopy } from './raw-copy-check.js';
import { type SnapDir, fileOf, readSnapDir, shownOf, snapshotFileId } from '../snapshots/snap-dir.js';

/** A persistent image and its snapshots, as local paths the handler resolved inside the roots. */
export interface ImageTarget {
  /** SOURCE itself (a final symlink is not followed). */
  readonly source: string;
  /** `<SOURCE>.snap`. */
  readonly snapDir: string;
  /** `<SOURCE>.md5sum`: the ssh TM's cached checksum, stale once the content changes. */
  readonly md5sum: string;
  /** IMAGE/FORMAT: the format of SOURCE and of every full-copy snapshot. */
  readonly format: ImageFormat;
  /** Start of every message: "image snapshot revert host01:/var/lib/one/datastores/1/<hash> (snapshot 2)". */
  readonly what: string;
  readonly signal: AbortSignal;
  /** The agent's roots: every chain is validated against them before it is read (safe-chain.ts). */
  readonly scope: ChainScope;
  readonly names: StoredNames;
  /** Hole-keeping copy to a temporary name and rename (full-copy reverts). */
  readonly copy: CopyLocal;
  /** Where a whole-image copy reports its progress (CallContext.progress). */
  readonly progress?: ((p: Progress) => void) | undefined;
}

/**
 * How SOURCE relates to a snapshot chain (docs/image-datastore.md#snapshots-of-persistent-images):
 * - `base`: `.snap/0 -> SOURCE` (qcow2/shared `ln`): SOURCE is snapshot 0's file, frozen since the
 *   first snapshot; the highest-numbered file is the active layer.
 * - `link`: SOURCE -> `.snap/N` (tm/local and qcow2 `mvds.ssh`): file N is the active layer.
 * - `copy`: SOURCE is a standalone file holding the current state, the chain beside it kept as the
 *   VM left it (one-storage's tm/local `mvds`): the highest-numbered file is that VM's last active layer.
 */
export type SourceRole = 'base' | 'link' | 'copy';

/** What `<SOURCE>.snap` holds, read and checked before anything is changed. */
export type ImageLayout =
  /** No snap dir: the image has no snapshots (or a flatten already removed them). */
  | { readonly kind: 'none' }
  /** Full copies `.snap/<k>`, each standalone in the image's format; SOURCE holds the current state. */
  | { readonly kind: 'copies'; readonly snap: SnapDir; readonly tops: Tops }
  /** qcow2 overlays `.snap/<k>` backed by other files of the snap dir. */
  | {
      readonly kind: 'chain';
      readonly snap: SnapDir;
      readonly tops: Tops;
      /** Overlay id → the id of the file it is built on. */
      readonly backings: ReadonlyMap<number, number>;
      readonly role: SourceRole;
      /** The file that is the active layer (never a snapshot). */
      readonly activeId: number;
    };

/** Every numbered entry's own header, validated (its backing name checked, not yet opened). */
export type Tops = ReadonlyMap<number, ChainLayer>;

/** A layout that has a snap dir. */
export type SnapLayout = Exclude<ImageLayout, { kind: 'none' }>;

/**
 * Reads SOURCE and `<SOURCE>.snap` and says which layout they are in, or refuses (BAD_LAYOUT) what
 * is none of them: a numbered entry that is not a regular file (the one exception: qcow2's
 * `.snap/0 -> SOURCE`), SOURCE linked anywhere but to a numbered file of its snap dir, a raw image
 * with a chain, an overlay backed by something that is not a file of the snap dir, a loop. Every
 * entry's own header and backing name are validated (safe-chain.ts: no protocol name, no data
 * file, nothing in a VM directory or outside the roots) and the backing graph is built from them;
 * the chain an action then opens is validated whole first (snapshotChain). NOT_FOUND when SOURCE
 * does not exist.
 */
export async function readImageLayout(t: ImageTarget): Promise<ImageLayout> {
  const links = await readLayoutLinks(t);
  if (links.kind === 'none') return links;
  const { snap, base, linkedId } = links;
  const tops = new Map<number, ChainLayer>();
  for (const [id, entry] of [...snap.files].sort((a, b) => a[0] - b[0])) {
    const opts = { what: t.what, signal: t.signal, format: t.format, scope: t.scope };
    // One header per file; `.snap/0 -> SOURCE` takes SOURCE's whole chain (it is not a snap dir file).
    const [top] = await (base && id === 0
      ? verifyChain(entry, opts)
      : readChain(entry, t.format, { ...opts, chain: false }));
    if (top) tops.set(id, top);
  }
  const backings = await backingIds(t.what, snap, tops, base ? 0 : undefined);
  if (linkedId === undefined && !base && backings.size === 0) return { kind: 'copies', snap, tops };
  const role = linkedId !== undefined ? 'link' : base ? 'base' : 'copy';
  const activeId = linkedId ?? Math.max(...snap.files.keys());
  refuseCurrentOnActive(t.what, snap, activeId);
  return { kind: 'chain', snap, tops, backings, role, activeId };
}

/** What a snap dir's entries say before any image header is read (readLayoutLinks). */
export type LayoutLinks =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'dir';
      readonly snap: SnapDir;
      /** `.snap/0 -> SOURCE` and SOURCE a file: the `base` role, the highest file the active layer. */
      readonly base: boolean;
      /** The numbered file SOURCE links to (the `link` role). */
      readonly linkedId: number | undefined;
    };

/**
 * The first half of readImageLayout, which opens no image: SOURCE's and the snap dir's entries,
 * their kinds and links, with the same refusals (NOT_FOUND, BAD_LAYOUT). Enough to tell the `base`
 * and `link` roles and their active layer; a reader that then opens the active layer's chain
 * validates that chain itself (agent/src/snapshots/chain-safety.ts).
 */
export async function readLayoutLinks(
  t: Pick<ImageTarget, 'source' | 'snapDir' | 'format' | 'what' | 'names'>,
): Promise<LayoutLinks> {
  const src = await lstatOrUndefined(t.source);
  if (src === undefined) throw new StorageError('NOT_FOUND', `${t.what}: the image does not exist`);
  if (!src.isFile() && !src.isSymbolicLink()) {
    throw new StorageError('BAD_LAYOUT', `${t.what}: the image is not a file`);
  }
  const dirSt = await lstatOrUndefined(t.snapDir);
  if (dirSt === undefined) {
    if (src.isSymbolicLink()) throw badLayout(t, 'the image is a symlink but it has no snap dir');
    return { kind: 'none' };
  }
  if (!dirSt.isDirectory()) throw badLayout(t, 'its snap dir is not a directory');
  const snap = await readSnapDir(t.snapDir, t.what);
  const sourceReal = src.isFile() ? await realpath(t.source) : undefined;
  let base = false;
  for (const [id, entry] of snap.files) {
    const st = await lstat(entry);
    if (st.isFile()) {
      if (t.format === 'raw') await refuseQcow2InRawCopy(entry, shownOf(snap, id), t.what);
      continue;
    }
    const isBase =
      st.isSymbolicLink() && t.format === 'qcow2' && id === 0 && sourceReal === (await realOf(entry));
    if (!isBase) throw badLayout(t, `${shownOf(snap, id)} is not a regular file`);
    base = true;
  }
  const linkedId = src.isSymbolicLink() ? await linkedEntry(t, snap) : undefined;
  return { kind: 'dir', snap, base, linkedId };
}

/**
 * The id of the file that holds snapshot `id` (following `.current` pointers), or undefined when
 * the snapshot is not there.
 */
export function snapshotFile(layout: SnapLayout, id: number): number | undefined {
  return snapshotFileId(layout.snap, id);
}

/**
 * The whole chain of the file holding a snapshot, validated layer by layer (safe-chain.ts) right
 * before a qemu tool opens it: chain files are qcow2, full copies in the image's format.
 */
export function snapshotChain(t: ImageTarget, layout: SnapLayout, fileId: number): Promise<ChainLayer[]> {
  const format = layout.kind === 'chain' ? 'qcow2' : t.format;
  return verifyChain(fileOf(layout.snap, fileId), { what: t.what, signal: t.signal, format, scope: t.scope });
}

/** The id of the numbered entry SOURCE links to; BAD_LAYOUT for a link that leads anywhere else. */
async function linkedEntry(
  t: Pick<ImageTarget, 'source' | 'format' | 'what' | 'names'>,
  snap: SnapDir,
): Promise<number> {
  if (t.format !== 'qcow2') throw badLayout(t, 'a raw image is a symlink');
  const text = await readlink(t.source);
  const target = t.names.localOf(text, dirname(t.source));
  const entry = await entryPath(target).catch(() => undefined);
  for (const [id, file] of snap.files) {
    if (entry !== undefined && entry === (await entryPath(file))) return id;
  }
  throw badLayout(t, `the image links to ${text}, which is not a numbered file of ${snap.short}`);
}

/** BAD_LAYOUT when a `.current` pointer claims file `activeId`, the active layer, as a snapshot. */
export function refuseCurrentOnActive(what: string, snap: SnapDir, activeId: number): void {
  for (const [id, target] of snap.currents) {
    if (target === activeId) {
      throw new StorageError(
        'BAD_LAYOUT',
        `${what}: ${snap.short}/${id}.current names the active layer ${shownOf(snap, target)}`,
      );
    }
  }
}

async function realOf(path: string): Promise<string | undefined> {
  return realpath(path).catch(() => undefined);
}

async function lstatOrUndefined(path: string) {
  return lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
}

function badLayout(t: Pick<ImageTarget, 'what'>, why: string): StorageError {
  return new StorageError('BAD_LAYOUT', `${t.what}: ${why}`);
}
