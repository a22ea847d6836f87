import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MIB } from '../../../common/src/units.js';

/**
 * Space a backup directory takes on disk, in MiB rounded up, as `du -sm` counts it (allocated
 * blocks of the directory and its regular files; dot-names, work in progress, are left out).
 */
export async function backupDirSizeMb(dir: string): Promise<number> {
  let bytes = (await lstat(dir)).blocks * 512;
  for (const name of await readdir(dir)) {
    if (name.startsWith('.')) continue;
    const st = await lstat(join(dir, name));
    if (st.isFile()) bytes += st.blocks * 512;
  }
  return Math.ceil(bytes / MIB);
}
