import { MIB } from '../../../common/src/units.js';
/** One disk of a VM as monitord's DISK_SIZE / SNAPSHOT_SIZE report it (sizes in MiB). */
export interface DiskUsage {
  diskId: number;
  sizeMb: number;
  snapshots: ReadonlyArray<{ id: number; sizeMb: number }>;
}

/** One VM directory (`<datastore>/<vmid>/`) that holds at least one `disk.N`. */
export interface VmUsage {
  vmId: number;
  disks: readonly DiskUsage[];
}

/** st_blocks counts 512-byte units whatever the filesystem's block size (stat(2)). */
const STAT_BLOCK_BYTES = 512;

/**
 * Allocated size in MiB, rounded up as `du -m` rounds: what a file really costs its datastore. A
 * sparse 10 GiB image holding 300 MiB reports 300, not 10240.
 */
export function allocatedMb(blocks: number): number {
  return Math.ceil((blocks * STAT_BLOCK_BYTES) / MIB);
}

/** MiB rounded up, as `df -B1M` prints sizes. */
export function bytesToMbCeil(bytes: number): number {
  return Math.ceil(bytes / MIB);
}
