import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MIB } from '../../../common/src/units.js';

/**
 * Space a directory and the files in it take on disk, in MiB rounded up, as `du -sm` counts it
 * (allocated blocks, not apparent sizes: holes in a qcow2 cost nothing). One level: a backup
 * directory holds files only.
 */
export async function allocatedMb(dir: string): Promise<number> {
  let bytes = (await lstat(dir)).blocks * 512;
  for (const name of await readdir(dir)) bytes += (await lstat(join(dir, name))).blocks * 512;
  return Math.ceil(bytes / MIB);
}
