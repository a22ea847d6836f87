import { link, realpath, rm } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import type { NameAnchor, StoredNames } from '../paths/stored-name.js';
import type { ChainScope } from '../qemu/layer-places.js';
import { type Backing, type ImageFormat, create, rebase } from '../qemu/qemu-img.js';
import { type ChainLayer, readChain } from '../qemu/safe-chain.js';
import { type VerifyOptions, assertNotInChain, entryPath, verifyChain } from './chain-safety.js';
import {
  type DiskState,
  type SnapDir,
  ensureSnapDir,
  fileOf,
  linkTextFor,
  readDisk,
  readSnapDir,
  relink,
  shownOf,
  snapshotFileId,
} from './snap-dir.js';

/**
 * How new backing names are written: "relative" = `disk.N.snap/K`, resolved through the self link
 * (qcow2/shared); "bare" = `K` (tm/local). Both resolve against the snap dir, where every file lives.
 */
export type BackingStyle = 'relative' | 'bare';

/** One disk's snapshot files, as local paths (the handler has resolved and confined them). */
export interface SnapshotTarget {
  /** `disk.N` itself: a symlink to the active layer, or a plain file before the first snapshot. */
  readonly disk: string;
  readonly snapDir: string;
  readonly style: BackingStyle;
  /** Start of every message: "snapshot create host01:/var/lib/one/datastores/0/42/disk.0 (id 3)". */
  readonly what: string;
  readonly signal?: AbortSignal;
  /** The agent's roots: every chain is validated against them before it is read (safe-chain.ts). */
  readonly scope: ChainScope;
  /** The naming rule for every link text and backing name written (paths/stored-name.ts). */
  readonly names: StoredNames;
  /**
   * Live create only: makes the running VM write into the new overlay (a libvirt external
   * snapshot onto it) before the disk is relinked. Idempotent: a VM already on it is left alone.
   */
  readonly switchTo?: (overlay: string) => Promise<void>;
}

/**
 * qcow2 snapshot create (OpenNebula's layout, docs/opennebula/snapshots.md#qcow2-layout): file N holds snapshot N and the active
 * layer is the highest-numbered file, one above the last snapshot. Creating S makes `<S+1>` an
 * empty overlay on the active file `<S>` and relinks the disk to it. A repeat (the disk already on
 * `<S+1>`, whose backing is `<S>`) changes nothing and reports created=false.
 */
export async function createQcow2Snapshot(t: SnapshotTarget, id: number): Promise<{ created: boolean }> {
  let snap = await readSnapDir(t.snapDir, t.what);
  let disk = await readDisk(t.disk, snap, t.what, t.names);
  const next = id + 1;
  if (disk.kind === 'missing') throw new StorageError('NOT_FOUND', `${t.what}: the disk does not exist`);
  const firstActive = activeFile(t, snap, disk);
  const firstChain = await verifyChain(firstActive, qemuOpts(t));
  if (disk.kind === 'plain') {
    // A disk that never had a snapshot (tm/ssh, a standalone clone) becomes the structure: its file
    // is snapshot `id`. Older full-copy snapshots (tm/ssh keeps them in the same dir) may stay below.
    const clash = [...snap.files.keys()].filter((k) => k >= id);
    if (clash.length > 0) {
      throw new StorageError(
        'ALREADY_EXISTS',
        `${t.what}: the disk is a plain file but ${shownOf(snap, Math.max(...clash))} already exists`,
      );
    }
    await ensureSnapDir(snap, t.style === 'relative', t.what);
    await adopt(t, snap, id);
    snap = await readSnapDir(t.snapDir, t.what);
    disk = await readDisk(t.disk, snap, t.what, t.names);
  }
  if (disk.kind !== 'linked') throw new StorageError('BAD_LAYOUT', `${t.what}: the disk changed under us`);
  const active = disk.activeId;
  if (active === next) {
    if (await backsOn(t, fileOf(snap, next), snap, id)) {
      await t.switchTo?.(fileOf(snap, next));
      return { created: false };
    }
    throw new StorageError(
      'ALREADY_EXISTS',
      `${t.what}: the disk already runs on ${shownOf(snap, next)}, which is not an overlay on ${shownOf(snap, id)}`,
    );
  }
  if (active > id) {
    throw new StorageError(
      'ALREADY_EXISTS',
      `${t.what}: the disk runs on ${shownOf(snap, active)}, so snapshot ${id} would not be the newest (file N holds snapshot N)`,
    );
  }
  const above = [...snap.files.keys()].filter((k) => k > active);
  if (above.length > 0) {
    // The one leftover this call can make itself: <S+1> renamed into place, the relink not done.
    if (
      active === id &&
      above.length === 1 &&
      above[0] === next &&
      (await backsOn(t, fileOf(snap, next), snap, id))
    ) {
      await t.switchTo?.(fileOf(snap, next));
      await relink(t.disk, await linkTextFor(t.disk, snap, next, t.names));
      await verifyChain(fileOf(snap, next), qemuOpts(t));
      return { created: true };
    }
    throw new StorageError(
      'BAD_LAYOUT',
      `${t.what}: ${shownOf(snap, Math.max(...above))} lies above the active layer ${shownOf(snap, active)}`,
    );
  }
  if (active < id) {
    // oned's ids skipped (a failed snapshot still used one): the active file takes the new id, so
    // that file N keeps holding snapshot N. Nothing may be built on it (it is the top layer).
    await assertNoChildren(t, snap, active);
    await adopt(t, snap, id, fileOf(snap, active));
    snap = await readSnapDir(t.snapDir, t.what);
  }
  await ensureSnapDir(snap, t.style === 'relative', t.what);
  const base = fileOf(snap, id);
  // Read (and so check) the chain first: `qemu-img create -b` on a looping chain never returns.
  // The usual case (the disk on `<S>`, nothing adopted) already read exactly this chain above.
  const chain = base === firstActive ? firstChain : await verifyChain(base, qemuOpts(t));
  await assertNotInChain(fileOf(snap, next), chain, t.what, shownOf(snap, next));
  await writeOverlay(t, snap, next, id, chain[0]?.format ?? 'qcow2');
  if (t.switchTo) {
    try {
      await t.switchTo(fileOf(snap, next));
    } catch (err) {
      // The VM did not move onto it (an atomic snapshot either happens or not): nothing uses it.
      await rm(fileOf(snap, next), { force: true });
      throw err;
    }
  }
  const linkText = await linkTextFor(t.disk, snap, next, t.names);
  try {
    await relink(t.disk, linkText);
  } catch (err) {
    // Live, the VM already writes into the overlay: keep it (a repeat relinks), never remove it.
    if (!t.switchTo) await rm(fileOf(snap, next), { force: true });
    throw err;
  }
  await verifyChain(fileOf(snap, next), qemuOpts(t));
  return { created: true };
}

/**
 * qcow2 revert to S: the active file is replaced by an empty overlay on the file that holds S
 * (following `.current`). The snapshots are untouched; the active layer's changes are discarded.
 * The active entry is replaced by rename, so a `.snap/0 -> IMAGE` link is replaced, never written
 * through (the data loss of OpenNebula #2189/#6663).
 */
export async function revertQcow2Snapshot(t: SnapshotTarget, id: number): Promise<void> {
  let snap = await readSnapDir(t.snapDir, t.what);
  let disk = await readDisk(t.disk, snap, t.what, t.names);
  if (disk.kind === 'missing') throw new StorageError('NOT_FOUND', `${t.what}: the disk does not exist`);
  await verifyChain(activeFile(t, snap, disk), qemuOpts(t));
  const fileId = snapshotFileId(snap, id);
  if (fileId === undefined) {
    throw new StorageError('NOT_FOUND', `${t.what}: snapshot ${id} does not exist (no ${shownOf(snap, id)})`);
  }
  if (disk.kind === 'plain') {
    // A tm/ssh disk with full-copy snapshots: its content is being discarded anyway, so it becomes
    // the active layer of the structure, above every existing file, and is replaced below.
    await ensureSnapDir(snap, t.style === 'relative', t.what);
    await adopt(t, snap, Math.max(...snap.files.keys()) + 1);
    snap = await readSnapDir(t.snapDir, t.what);
    disk = await readDisk(t.disk, snap, t.what, t.names);
  }
  if (disk.kind !== 'linked') throw new StorageError('BAD_LAYOUT', `${t.what}: the disk changed under us`);
  const active = disk.activeId;
  if (fileId === active) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${t.what}: ${shownOf(snap, active)} is the active layer, not a snapshot`,
    );
  }
  await assertNoChildren(t, snap, active);
  await ensureSnapDir(snap, t.style === 'relative', t.what);
  const chain = await verifyChain(fileOf(snap, fileId), qemuOpts(t));
  await assertNotInChain(fileOf(snap, active), chain, t.what, shownOf(snap, active));
  await writeOverlay(t, snap, active, fileId, chain[0]?.format ?? 'qcow2');
  await verifyChain(fileOf(snap, active), qemuOpts(t));
}

/**
 * qcow2 delete of S (offline): every file built on S's file (the next snapshot and/or the active
 * layer; after a revert there can be both) is rebased onto S's own backing file, which copies in
 * the data they still read from S, then S's file and `<S>.current` are removed. A symlink entry is
 * removed, never its target. An absent snapshot is a success with existed=false (a repeat).
 */
export async function deleteQcow2Snapshot(
  t: SnapshotTarget,
  id: number,
): Promise<{ existed: boolean; rebased: number; activeRebased: boolean }> {
  const snap = await readSnapDir(t.snapDir, t.what);
  const disk = await readDisk(t.disk, snap, t.what, t.names);
  if (disk.kind === 'missing') throw new StorageError('NOT_FOUND', `${t.what}: the disk does not exist`);
  await verifyChain(activeFile(t, snap, disk), qemuOpts(t));
  const fileId = snapshotFileId(snap, id);
  if (fileId === undefined) return { existed: false, rebased: 0, activeRebased: false };
  const activeId = disk.kind === 'linked' ? disk.activeId : undefined;
  if (fileId === activeId) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${t.what}: ${shownOf(snap, fileId)} is the active layer, not a snapshot`,
    );
  }
  const target = fileOf(snap, fileId);
  const [own] = await verifyChain(target, qemuOpts(t));
  const candidates = [...snap.files.keys()].filter((k) => k !== fileId).map((k) => fileOf(snap, k));
  if (disk.kind === 'plain') candidates.push(t.disk);
  const children: string[] = [];
  for (const c of candidates) if (await backsOnPath(t, c, target)) children.push(c);
  for (const child of children) {
    const inSnapDir = (await entryPath(child)).startsWith(`${await entryPath(t.snapDir)}/`);
    const backing = await childBackingName(t, snap, own, inSnapDir ? undefined : child);
    await verifyChain(child, qemuOpts(t));
    if (own?.fullBackingFilename !== undefined && backing !== undefined) {
      const newChain = await verifyChain(own.fullBackingFilename, {
        ...qemuOpts(t),
        format: backing.format,
      });
      await assertNotInChain(child, newChain, t.what, child);
    }
    await rebase(child, { ...qemuOpts(t), backing });
    await verifyChain(child, qemuOpts(t));
  }
  await rm(target);
  await rm(join(snap.dir, `${id}.current`), { force: true });
  if (activeId !== undefined) await verifyChain(fileOf(snap, activeId), qemuOpts(t));
  const active = activeId !== undefined ? fileOf(snap, activeId) : t.disk;
  return { existed: true, rebased: children.length, activeRebased: children.includes(active) };
}

/**
 * Makes `<snap dir>/<id>` the active file and points the disk at it, without a moment where the
 * disk name leads nowhere: a hard link first (from the plain disk, or from the old active entry
 * `from`), then the atomic relink, then the old name goes.
 */
async function adopt(t: SnapshotTarget, snap: SnapDir, id: number, from?: string): Promise<void> {
  const to = fileOf(snap, id);
  await link(from ?? t.disk, to).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EXDEV') {
      throw new StorageError(
        'BAD_LAYOUT',
        `${t.what}: the disk and ${snap.short} are on different filesystems`,
      );
    }
    throw err;
  });
  try {
    await relink(t.disk, await linkTextFor(t.disk, snap, id, t.names));
  } catch (err) {
    await rm(to, { force: true });
    throw err;
  }
  if (from !== undefined) await rm(from);
}

/** Writes `<snap dir>/<id>` as an empty overlay on `<snap dir>/<backingId>`: temporary name, rename. */
async function writeOverlay(
  t: SnapshotTarget,
  snap: SnapDir,
  id: number,
  backingId: number,
  backingFormat: ImageFormat,
): Promise<void> {
  const dest = fileOf(snap, id);
  const backing = { name: await backingNameFor(t, snap, backingId), format: backingFormat };
  await writeAtomically(dest, (tmp) => create(tmp, { ...qemuOpts(t), format: 'qcow2', backing }));
}

/**
 * The backing name a file built on S stores once S is gone: S's own backing file. A child in the
 * snap dir keeps S's stored name when it is relative (it resolves from the same places, whichever
 * style the directory uses); an absolute one (an older layout, or oned's path) and a child
 * elsewhere (`outside`) get the name by the rule.
 */
async function childBackingName(
  t: SnapshotTarget,
  snap: SnapDir,
  own: ChainLayer | undefined,
  outside?: string,
): Promise<Backing | undefined> {
  const full = own?.fullBackingFilename;
  if (own === undefined || full === undefined) return undefined;
  // readChain refuses a backing file without a recorded format, so a validated layer has both.
  const format = own.backingFormat;
  if (format === undefined) {
    throw new StorageError('BAD_LAYOUT', `${t.what}: ${own.filename} records no backing format`);
  }
  if (outside !== undefined) return { name: await t.names.nameFor(full, { dir: dirname(outside) }), format };
  if (own.backingFilename !== undefined && !isAbsolute(own.backingFilename)) {
    return { name: own.backingFilename, format };
  }
  const anchor = await anchorFor(t, snap);
  if (anchor.selfLink !== undefined) await ensureSnapDir(snap, true, t.what);
  return { name: await t.names.nameFor(full, anchor), format };
}

/** The backing name a new overlay stores for `<snap dir>/<id>`. */
async function backingNameFor(t: SnapshotTarget, snap: SnapDir, id: number): Promise<string> {
  return backingNameOf(t, snap, fileOf(snap, id));
}

/**
 * The backing name a file of the snap dir stores for `file` (an entry of the snap dir, or an image
 * outside it): the short form the agent writes, which resolves wherever the layer is opened from.
 */
export async function backingNameOf(t: SnapshotTarget, snap: SnapDir, file: string): Promise<string> {
  return t.names.nameFor(file, await anchorFor(t, snap));
}

/**
 * What the backing names of a snap dir's files are relative to. qemu resolves a relative name
 * against the directory of the path the image was opened by: the VM directory when opened through
 * disk.N, the snap dir when opened through an earlier layer's name. "relative": a snap dir beside
 * the disk names through its self link (`disk.0.snap/K`, `disk.0.snap/../../../1/<image>`), valid
 * from both; a persistent image's `<IMAGE>.snap`, reached by disk.N from a VM directory, names from
 * the VM directory (`../../1/<hash>.snap/K`), which the snap dir, the same depth below the datastore
 * location, resolves alike. "bare" (tm/local): `K`, from the snap dir.
 */
async function anchorFor(t: SnapshotTarget, snap: SnapDir): Promise<NameAnchor> {
  if (t.style === 'bare') return { dir: snap.dir };
  const beside = (await realpath(dirname(t.disk))) === (await realpath(dirname(snap.dir)));
  return beside ? { dir: snap.dir, selfLink: snap.short } : { dir: dirname(t.disk) };
}

/** Refuses when some file of the snap dir has `<id>` as its backing file. */
async function assertNoChildren(t: SnapshotTarget, snap: SnapDir, id: number): Promise<void> {
  const target = fileOf(snap, id);
  for (const [k, path] of snap.files) {
    if (k !== id && (await backsOnPath(t, path, target))) {
      throw new StorageError(
        'BAD_LAYOUT',
        `${t.what}: ${shownOf(snap, k)} is built on the active layer ${shownOf(snap, id)}`,
      );
    }
  }
}

async function backsOn(t: SnapshotTarget, path: string, snap: SnapDir, id: number): Promise<boolean> {
  return snap.files.has(id) && backsOnPath(t, path, fileOf(snap, id));
}

/** True when the image at `path` names `target` (the same directory entry) as its backing file. */
async function backsOnPath(t: SnapshotTarget, path: string, target: string): Promise<boolean> {
  const [layer] = await readChain(path, 'qcow2', { ...qemuOpts(t), chain: false });
  if (layer?.fullBackingFilename === undefined) return false;
  const entry = await entryPath(layer.fullBackingFilename).catch(() => undefined);
  return entry !== undefined && entry === (await entryPath(target));
}

/** The disk's active image as a path whose backing names resolve (bare names need the snap dir). */
function activeFile(t: SnapshotTarget, snap: SnapDir, disk: DiskState): string {
  return disk.kind === 'linked' ? fileOf(snap, disk.activeId) : t.disk;
}

/** Every file of a qcow2 disk's snap dir is qcow2 (DISK/FORMAT); layers below take their header's. */
function qemuOpts(t: SnapshotTarget): VerifyOptions {
  return {
    what: t.what,
    ...(t.signal ? { signal: t.signal } : {}),
    format: 'qcow2',
    scope: t.scope,
  };
}
