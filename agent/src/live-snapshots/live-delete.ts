import { WHOLE_DISK_TIMEOUT_MS } from '../../../common/src/tools/run-tool.js';
import { realpath } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import type { Progress } from '../jobs/job-registry.js';
import { type DomainDisk, liveDomain } from '../libvirt/domain.js';
import { watchBlockJob } from '../libvirt/block-job-wait.js';
import { virsh } from '../libvirt/virsh.js';
import { verifyChain } from '../snapshots/chain-safety.js';
import { deleteQcow2Snapshot, type SnapshotTarget } from '../snapshots/qcow2-snapshots.js';
import { fileOf, readDisk, readSnapDir, shownOf, snapshotFileId } from '../snapshots/snap-dir.js';
import { type LiveTarget, layerRef, matchingDisk } from './live-domain.js';
import { shortenActiveBacking } from './short-backing-name.js';

export type DeleteMethod = 'blockpull' | 'offline';

/**
 * snap_delete of a qcow2 snapshot while the VM runs. When the snapshot's file is in the running
 * disk's chain, qemu-img must not write that chain, so libvirt takes the snapshot out of it first:
 * `blockpull --base <the snapshot's backing file> --keep-relative` copies the snapshot's data (and
 * that of any layer between it and the active one) up into the active layer, which then backs on
 * the snapshot's own backing file. The snapshot's file and its children have left the live chain,
 * so the offline algorithm finishes the job: children are rebased onto the snapshot's backing
 * file (keeping their content), then the file goes.
 *
 * Departure from OpenNebula (docs/opennebula/snapshots.md#snap_delete), which block-commits a child into the snapshot's file
 * and leaves a `<child>.current` pointer: a block commit reopens its base layer read-write by the
 * name libvirt opened it with, and the layer the VM was deployed on was opened as `disk.N`, a
 * symlink that now leads to the active layer. Pulling only ever writes the active layer. The
 * price is that the active layer grows by the merged data. `.current` pointers OpenNebula left
 * are still followed.
 *
 * A snapshot outside the live chain (left by a revert), or a domain that is not running, takes the
 * offline path directly.
 */
export async function deleteQcow2SnapshotLive(
  t: SnapshotTarget,
  id: number,
  live: LiveTarget,
  /** Where the pull reports its progress (phase "block-pull", of the disk's virtual size). */
  report?: (p: Progress) => void,
): Promise<{ existed: boolean; method: DeleteMethod; activeRebased: boolean }> {
  const domain = await liveDomain(live.domain, live.virsh).catch((err: unknown) => {
    if (err instanceof StorageError && err.reason === 'DOMAIN_NOT_FOUND') return undefined;
    throw err;
  });
  if (!domain?.running) {
    live.log.info({ domain: live.domain }, 'domain not running: deleting the snapshot offline');
    return { ...(await deleteQcow2Snapshot(t, id)), method: 'offline' };
  }
  const snap = await readSnapDir(t.snapDir, t.what);
  const disk = await readDisk(t.disk, snap, t.what, t.names);
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
    format: 'qcow2' as const,
    scope: t.scope,
  };
  const active = fileOf(snap, disk.activeId);
  const layers = await verifyChain(active, opts);
  const real = await Promise.all(layers.map((l) => realpath(l.filename)));
  const pos = real.indexOf(await realpath(fileOf(snap, fileId)));
  if (pos < 0) return { ...(await deleteQcow2Snapshot(t, id)), method: 'offline' };
  const domainDisk = await matchingDisk(live, active, domain.disks);
  if (domainDisk.indices.length !== layers.length) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${t.what}: libvirt sees ${domainDisk.indices.length} layers under ${live.target} of ${live.domain}, the files ${layers.length}`,
    );
  }
  // A block job already running on the disk makes blockpull fail with BUSY, changing nothing.
  const base = pullBase(layers, real, pos, domainDisk, live);
  const total = layers[0]?.virtualSize ?? 0;
  // Started without --wait: its end is libvirt's event, not virsh's next poll (block-job-wait.ts).
  const watch = watchBlockJob(live.domain, live.target, 'Block Pull', live.virsh);
  try {
    await virsh(['blockpull', live.domain, live.target, ...base], live.virsh);
    const how = await watch.ended({
      progress: report && { report, phase: 'block-pull', total },
      timeoutMs: WHOLE_DISK_TIMEOUT_MS,
    });
    if (how === 'gone') await requirePulled(live, base.length > 0 ? layers.length - pos : 1);
  } finally {
    watch.close();
  }
  // The offline steps read the chain again (and check it) before they touch anything.
  const result = await deleteQcow2Snapshot(t, id);
  // libvirt's --keep-relative name grows by a self link with every pull: back to the short one.
  if (base.length > 0) await shortenActiveBacking(t, active, live.log);
  return { existed: result.existed, method: 'blockpull', activeRebased: true };
}

/**
 * The `--base` arguments of the pull that takes layer `pos` out of the chain. After the pull the
 * active layer's header names the base, and that name must lead to the base's file on every host:
 *  - the snapshot stores a relative backing name (what the agent writes, docs/architecture.md):
 *    `--keep-relative` makes libvirt write a relative name too;
 *  - an absolute name (oned's path across roots, or one OpenNebula's drivers wrote): libvirt would
 *    write its own name for the base, this host's local path, which another host may not share and
 *    which is stale when the base is the layer the VM was deployed on (opened as `disk.N`, a symlink
 *    that now leads to the active layer). Nothing is named instead: the whole chain is pulled and
 *    the active layer becomes standalone (more data copied, never a wrong or local name).
 */
function pullBase(
  layers: ReadonlyArray<{ backingFilename?: string }>,
  real: readonly string[],
  pos: number,
  domainDisk: DomainDisk,
  live: LiveTarget,
): string[] {
  if (pos + 1 >= layers.length) return [];
  const ref = layerRef(domainDisk, pos + 1);
  const stored = layers[pos]?.backingFilename ?? '';
  if (stored !== '' && !isAbsolute(stored)) return ['--base', ref, '--keep-relative'];
  live.log.warn(
    { domain: live.domain, target: live.target, stored, base: real[pos + 1] },
    'the snapshot names its base by an absolute name: pulling the whole chain into the active layer',
  );
  return [];
}

/**
 * A pull that ended without an event saying how (no event stream yet): it worked when the running
 * disk's chain has the `layers` it should have now, else it failed and nothing may be removed.
 */
async function requirePulled(live: LiveTarget, layers: number): Promise<void> {
  const after = await liveDomain(live.domain, live.virsh);
  const have = after.disks.find((d) => d.target === live.target)?.indices.length ?? 0;
  if (have !== layers) {
    throw new StorageError(
      'TOOL_FAILED',
      `${live.virsh.what}: the block pull on ${live.target} of ${live.domain} ended, but the disk runs on ${have} layers, not ${layers}`,
    );
  }
}
