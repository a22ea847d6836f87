import { statfs } from 'node:fs/promises';
import { bytesToMbCeil } from './disk-usage.js';

/** `df -B1M -P` figures of the filesystem holding a path, in MiB (used = column 3, total = 2, free = 4). */
export interface DatastoreCapacity {
  usedMb: number;
  totalMb: number;
  freeMb: number;
}

/**
 * statfs(2) read as df reads it: total = f_blocks, used = f_blocks - f_bfree, free = f_bavail (what an
 * unprivileged writer can still use), each in f_bsize units and rounded up to MiB as df -B1M does.
 */
export async function filesystemCapacity(path: string): Promise<DatastoreCapacity> {
  const s = await statfs(path);
  return {
    usedMb: bytesToMbCeil((s.blocks - s.bfree) * s.bsize),
    totalMb: bytesToMbCeil(s.blocks * s.bsize),
    freeMb: bytesToMbCeil(s.bavail * s.bsize),
  };
}
