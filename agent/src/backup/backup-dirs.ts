import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDirectory } from '../files/make-directory.js';

/** OpenNebula's per-backup directories inside the VM directory (docs/opennebula/backups.md#flow). */
export interface BackupDirs {
  /** `<vmdir>/backup`: disk.<id>.<backup_id> and vm.xml, read by the backup datastore. */
  readonly bck: string;
  /** `<vmdir>/tmp`: overlays and the XML documents given to virsh. */
  readonly tmp: string;
}

export function backupDirs(vmDir: string): BackupDirs {
  return { bck: join(vmDir, 'backup'), tmp: join(vmDir, 'tmp') };
}

/** Wiped and recreated at every pre_backup, as OpenNebula does: anything left by an earlier one goes. */
export async function recreate(dirs: BackupDirs): Promise<void> {
  await removeAll(dirs);
  await makeDirectory(dirs.bck);
  await makeDirectory(dirs.tmp);
}

export async function removeAll(dirs: BackupDirs): Promise<void> {
  await rm(dirs.bck, { recursive: true, force: true });
  await rm(dirs.tmp, { recursive: true, force: true });
}

/** `disk.<disk_id>.<backup_id>`. */
export function backupFileName(diskId: number, backupId: number): string {
  return `disk.${diskId}.${backupId}`;
}
