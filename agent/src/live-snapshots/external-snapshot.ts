import { realpath } from 'node:fs/promises';
import { StorageError } from '../../../common/src/errors.js';
import type { DomainDisk } from '../libvirt/domain.js';
import { withGuestHeld } from '../libvirt/freeze.js';
import { virsh } from '../libvirt/virsh.js';
import type { LiveTarget } from './live-domain.js';

/**
 * Moves a running domain's disk onto `overlay`, an overlay file already created on the disk's
 * active layer: `virsh snapshot-create-as --disk-only --atomic --no-metadata --reuse-external`
 * with every other disk `snapshot=no` (reference 2.3), the guest held still as FS_FREEZE says and
 * always let go. Idempotent: when the disk already runs on the overlay nothing is done. `disks` is
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
  const specs = disks.flatMap((d) =>
    d.target === t.target
      ? ['--diskspec', `${d.target},snapshot=external,file=${overlay},driver=qcow2`]
      : ['--diskspec', `${d.target},snapshot=no`],
  );
  await withGuestHeld(t.domain, t.freeze, { ...t.virsh, log: t.log }, async (heldBy) => {
    await virsh(
      [
        'snapshot-create-as',
        t.domain,
        '--disk-only',
        '--atomic',
        '--no-metadata',
        '--reuse-external',
        ...specs,
      ],
      t.virsh,
    ).catch((err: unknown) => {
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
  });
}
