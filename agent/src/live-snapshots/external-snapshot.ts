import { realpath } from 'node:fs/promises';
import { StorageError } from '../../../common/src/errors.js';
import type { DomainDisk } from '../libvirt/domain.js';
import { externalSnapshot } from '../libvirt/external-snapshot.js';
import type { LiveTarget } from './live-domain.js';

/**
 * Moves a running domain's disk onto `overlay`, an overlay file already created on the disk's
 * active layer, with an external snapshot reusing it (docs/opennebula/snapshots.md#snap_create_live; libvirt/external-snapshot.ts). Idempotent: when the disk already runs on the overlay nothing is done. `disks` is
 * the domain as the caller read it under the disk's lock. A block job on the disk makes libvirt
 * refuse the snapshot: BUSY.
 */
export async function switchToOverlay(
  t: LiveTarget,
  overlay: string,
  disks: readonly DomainDisk[],
): Promise<void> {
  const mine = disks.find((d) => d.target === t.target);
  const wanted = await realpath(overlay);
  if (mine && (await realpath(mine.source).catch(() => mine.source)) === wanted) return;
  const heldBy = await externalSnapshot(t.domain, [{ target: t.target, file: overlay }], disks, {
    ...t.virsh,
    freeze: t.freeze,
    reuseExisting: true,
    log: t.log,
  }).catch((err: unknown) => {
    if (err instanceof StorageError && err.reason === 'BUSY') {
      throw new StorageError(
        'BUSY',
        `${t.virsh.what}: a block job is already running on ${t.target} of ${t.domain}; try again when it ends`,
        { cause: err },
      );
    }
    throw err;
  });
  t.log.info({ domain: t.domain, target: t.target, overlay, heldBy }, 'domain switched to the new layer');
}
