import type { Logger } from '../../../common/src/log.js';
import type { DomainDisk } from './domain.js';
import { type FreezeMode, type HeldBy, withGuestHeld } from './freeze.js';
import { type VirshOptions, virsh } from './virsh.js';

/**
 * Puts the listed disks of a running domain onto new top layers with one atomic, disk-only,
 * metadata-less external snapshot (`virsh snapshot-create-as --disk-only --atomic --no-metadata`),
 * every other disk of `disks` `snapshot=no`, the guest held still as FS_FREEZE says for that
 * instant and always let go. `reuseExisting`: the layer files were made by the caller (the snapshot
 * chain's `<S+1>`, `--reuse-external`); otherwise libvirt creates them (backup overlays).
 * Used by snap_create_live and by live FULL backups.
 */
export async function externalSnapshot(
  domain: string,
  layers: ReadonlyArray<{ target: string; file: string }>,
  disks: readonly DomainDisk[],
  opts: VirshOptions & { freeze: FreezeMode; reuseExisting: boolean; log: Logger },
): Promise<HeldBy> {
  const args = ['snapshot-create-as', domain, '--disk-only', '--atomic', '--no-metadata'];
  if (opts.reuseExisting) args.push('--reuse-external');
  for (const d of disks) {
    const layer = layers.find((l) => l.target === d.target);
    args.push(
      '--diskspec',
      layer ? `${d.target},snapshot=external,file=${layer.file},driver=qcow2` : `${d.target},snapshot=no`,
    );
  }
  return withGuestHeld(domain, opts.freeze, opts, async (heldBy) => {
    await virsh(args, opts);
    return heldBy;
  });
}
