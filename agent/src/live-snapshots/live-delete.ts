import { realpath, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import { writeFileAtomic } from '../files/write-file-atomic.js';
import { isRunning } from '../libvirt/domain.js';
import { virsh } from '../libvirt/virsh.js';
import { backingChain } from '../qemu/backing-chain.js';
import { rebase } from '../qemu/qemu-img.js';
import { verifyChain } from '../snapshots/chain-safety.js';
import { deleteQcow2Snapshot, type SnapshotTarget } from '../snapshots/qcow2-snapshots.js';
import {
  fileOf,
  readDisk,
  readSnapDir,
  shownOf,
  snapshotFileId,
  snapshotIdOf,
} from '../snapshots/snap-dir.js';
import { type LiveTarget, layerRef, matchingDisk } from './live-domain.js';

/** Merging a layer copies its data; bounded, and the caller's signal can cancel it. */
const BLOCK_JOB_TIMEOUT_MS = 6 * 60 * 60_000;

export type DeleteMethod = 'blockpull' | 'blockcommit' | 'offline';

/**
 * snap_delete of a qcow2 snapshot while the VM runs (reference 2.3's algorithm). When the
 * snapshot's file is in the running disk's chain, libvirt merges it, since qemu-img must not write
 * a chain the VM uses:
 *  - it is the layer right below the active one: `blockpull --base <its backing>` copies its data
 *    up into the active layer, then the file is removed;
 *  - a deeper one: its child is `blockcommit`ted into it, so its file now holds the child's
 *    snapshot, `<child>.current` names that file, and the child's own file is removed.
 * A snapshot outside the live chain (left by a revert), or a domain that is not running, takes the
 * offline path. Other files built on the snapshot outside the live chain are rebased first.
 */
export async function deleteQcow2SnapshotLive(
  t: SnapshotTarget,
  id: number,
  live: LiveTarget,
): Promise<{ existed: boolean; method: DeleteMethod; activeRebased: boolean }> {
  if (!(await isRunning(live.domain, live.virsh))) {
    live.log.info({ domain: live.domain }, 'domain not running: deleting the snapshot offline');
    return { ...(await deleteQcow2Snapshot(t, id)), method: 'offline' };
  }
  const snap = await readSnapDir(t.snapDir, t.what);
  const disk = await readDisk(t.disk, snap, t.what);
  const fileId = snapshotFileId(snap, id);
  if (disk.kind !== 'linked' || fileId === undefined) {
    return { ...(await deleteQcow2Snapshot(t, id)), method: 'offline' };
  }
  if (fileId === disk.activeId) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${t.what}: ${shownOf(snap, fileId)} is the active layer, not a snapshot`,
    );
  }
  const opts = {
    what: t.what,
    ...(t.signal ? { signal: t.signal } : {}),
    ...(t.confine ? { confine: t.confine } : {}),
  };
  const active = fileOf(snap, disk.activeId);
  const target = fileOf(snap, fileId);
  const layers = await verifyChain(active, opts);
  const real = await Promise.all(layers.map((l) => realpath(l.filename)));
  const pos = real.indexOf(await realpath(target));
  if (pos < 0) return { ...(await deleteQcow2Snapshot(t, id)), method: 'offline' };
  const domainDisk = await matchingDisk(live, active);
  if (domainDisk.indices.length !== layers.length) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${t.what}: libvirt sees ${domainDisk.indices.length} layers under ${live.target} of ${live.domain}, the files ${layers.length}`,
    );
  }
  // Files outside the live chain that are built on the snapshot (after a revert) keep their data.
  const own = layers[pos];
  for (const [k, path] of snap.files) {
    if (k === fileId || real.includes(await realpath(path).catch(() => path))) continue;
    const [layer] = await backingChain(path, { ...opts, chain: false });
    const backs = layer?.fullBackingFilename;
    if (backs === undefined || (await realpath(backs).catch(() => backs)) !== real[pos]) continue;
    await rebase(path, {
      ...opts,
      backing: own?.backingFilename ?? '',
      ...(own?.backingFormat !== undefined ? { backingFormat: own.backingFormat } : {}),
    });
  }
  const job = { ...live.virsh, timeoutMs: BLOCK_JOB_TIMEOUT_MS };
  if (pos === 1) {
    const base = pos + 1 < layers.length ? ['--base', layerRef(domainDisk, pos + 1), '--keep-relative'] : [];
    await virsh(['blockpull', live.domain, live.target, ...base, '--wait'], job);
    await rm(target);
    await rm(join(snap.dir, `${id}.current`), { force: true });
    await verifyChain(active, opts);
    return { existed: true, method: 'blockpull', activeRebased: true };
  }
  const childFile = layers[pos - 1]?.filename ?? '';
  const childFileId = snapshotIdOf(basename(childFile));
  if (childFileId === undefined || !snap.files.has(childFileId)) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${t.what}: the layer above ${shownOf(snap, fileId)} is not a file of ${snap.short}`,
    );
  }
  await virsh(
    [
      'blockcommit',
      live.domain,
      live.target,
      '--top',
      layerRef(domainDisk, pos - 1),
      '--base',
      layerRef(domainDisk, pos),
      '--keep-relative',
      '--wait',
    ],
    job,
  );
  // The snapshot(s) the child's file held now live in the snapshot's file.
  const moved = [...new Set([childFileId, ...snap.currents.keys()])].filter(
    (k) => k !== id && snapshotFileId(snap, k) === childFileId,
  );
  for (const k of moved) await writeFileAtomic(join(snap.dir, `${k}.current`), `${target}\n`);
  await rm(join(snap.dir, `${id}.current`), { force: true });
  await rm(childFile);
  await verifyChain(active, opts);
  return { existed: true, method: 'blockcommit', activeRebased: false };
}
