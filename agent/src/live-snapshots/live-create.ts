import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { createQcow2Snapshot, type SnapshotTarget } from '../snapshots/qcow2-snapshots.js';
import { blockCopyTo } from './block-copy.js';
import { switchToOverlay } from './external-snapshot.js';
import { type LiveTarget, matchingDisk, runningDisks } from './live-domain.js';
import { makeDirectory } from '../files/make-directory.js';

/**
 * snap_create_live of a qcow2 disk (docs/opennebula/snapshots.md#snap_create_live): the overlay `<S+1>` is created on the active
 * layer first, the running domain is switched onto it with an external disk-only snapshot (other
 * disks untouched, the guest held still as FS_FREEZE says), then disk.N is relinked. The layout is
 * exactly the offline one, so every later action (offline or live) reads it the same way.
 */
export async function createQcow2SnapshotLive(
  t: SnapshotTarget & { diskFile: string },
  id: number,
  live: LiveTarget,
): Promise<{ created: boolean }> {
  const disks = await runningDisks(live);
  await matchingDisk(live, t.diskFile, disks).catch(async (err: unknown) => {
    // A repeat after the domain moved but before the relink: the domain runs on <S+1> already.
    const next = join(t.snapDir, String(id + 1));
    if (await exists(next)) return matchingDisk(live, next, disks);
    throw err;
  });
  return createQcow2Snapshot({ ...t, switchTo: (overlay) => switchToOverlay(live, overlay, disks) }, id);
}

/**
 * snap_create_live of a raw disk: a full copy into `<snap dir>/<S>` with a libvirt block copy
 * (the guest keeps running and writing; the copy is the disk at the moment the job finishes).
 * An existing snapshot file is kept (a repeat).
 */
export async function createRawSnapshotLive(
  t: { diskFile: string; snapDir: string },
  id: number,
  live: LiveTarget,
): Promise<{ created: boolean }> {
  await matchingDisk(live, t.diskFile, await runningDisks(live));
  const dest = join(t.snapDir, String(id));
  if (await exists(dest)) return { created: false };
  await makeDirectory(t.snapDir);
  await blockCopyTo(live, dest, 'raw');
  return { created: true };
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
