import type { DatastoreCapacity } from './capacity.js';
import type { VmUsage } from './disk-usage.js';

/**
 * The decoded MONITOR text of one VM, as tm/local/monitor_ds prints it (docs/opennebula/monitoring.md#monitor_ds):
 * `DISK_SIZE = [ ID=n, SIZE=mb ]` per disk, then its `SNAPSHOT_SIZE = [ ID=s, DISK_ID=n, SIZE=mb ]`.
 */
export function vmMonitorText(vm: VmUsage): string {
  const lines: string[] = [];
  for (const disk of vm.disks) {
    lines.push(`DISK_SIZE = [ ID=${disk.diskId}, SIZE=${disk.sizeMb} ]`);
    for (const s of disk.snapshots) {
      lines.push(`SNAPSHOT_SIZE = [ ID=${s.id}, DISK_ID=${disk.diskId}, SIZE=${s.sizeMb} ]`);
    }
  }
  return lines.map((l) => `${l}\n`).join('');
}

/** `VM = [ ID=n, MONITOR="<base64>" ]`: one VM's line in a MONITOR_VM message and in monitor_ds's output. */
export function vmLine(vm: VmUsage): string {
  let line = lines.get(vm);
  if (line === undefined) {
    line = `VM = [ ID=${vm.vmId}, MONITOR="${Buffer.from(vmMonitorText(vm)).toString('base64')}" ]`;
    lines.set(vm, line);
  }
  return line;
}

/**
 * Lines already built, by usage object: the scanner returns the same (never modified) object for
 * a VM whose figures did not change, so a steady cycle encodes only what changed.
 */
const lines = new WeakMap<VmUsage, string>();

/** Capacity of one marked datastore for SYSTEM_HOST (kvm-probes.d/host/system/monitor_ds.rb). */
export interface DatastoreFigures extends DatastoreCapacity {
  id: number;
}

/**
 * SYSTEM_HOST lines: the DATASTORE_LOCATION filesystem, then one `DS = [...]` per marked datastore.
 * oned replaces the host's whole DS set with what one message carries, so these are never split.
 */
export function systemHostLines(
  location: DatastoreCapacity,
  datastores: readonly DatastoreFigures[],
): string[] {
  return [
    `DS_LOCATION_USED_MB=${location.usedMb}`,
    `DS_LOCATION_TOTAL_MB=${location.totalMb}`,
    `DS_LOCATION_FREE_MB=${location.freeMb}`,
    ...datastores.map(
      (d) => `DS = [ ID=${d.id}, USED_MB=${d.usedMb}, TOTAL_MB=${d.totalMb}, FREE_MB=${d.freeMb} ]`,
    ),
  ];
}
