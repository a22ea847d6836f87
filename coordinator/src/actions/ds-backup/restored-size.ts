/**
 * The size a disk of a backup takes once restored (docs/backups.md#pseudo-urls): DISK/SIZE of that
 * disk in the vm.xml the backup holds, read from the backup server of the datastore the URL names.
 * Serves the backup datastore's `stat` and the image datastore's `stat` of a grpc_backup:// PATH
 * (a restore allocates images from those URLs).
 */
import { dirname } from 'node:path';
import { DS_DRIVER_BACKUP } from '../../../../common/src/drivers/driver-actions.js';
import { StorageError, oneLine } from '../../../../common/src/errors.js';
import { parseBackupUrl } from '../../../../common/src/backups/backup-url.js';
import { parseVm } from '../../oned/vm-xml.js';
import type { ActionContext } from '../action-context.js';
import { cleanPath } from '../host-path.js';
import { backupServerOf } from './backup-server.js';
import { decodeBackupVmXml } from './restore-template.js';

export async function restoredSizeMb(ctx: ActionContext, url: string, owner: string): Promise<number> {
  const u = parseBackupUrl(url, `${owner}: PATH`);
  const server = await backupServerOf(ctx, u.dsId, DS_DRIVER_BACKUP);
  const base = cleanPath(server.basePath);
  const dir = dirname(u.path);
  if (dirname(dirname(dir)) !== base)
    throw new StorageError(
      'PATH_OUTSIDE_ROOTS',
      `${owner}: PATH ${u.path} is not a backup of datastore ${u.dsId} (BASE_PATH ${base})`,
    );
  const listed = await ctx.ops.call(server.host, 'listBackup', { backupDir: dir, withTpmState: false });
  if (!listed.exists) throw new StorageError('NOT_FOUND', `${owner}: backup ${dir} is not on ${server.host}`);
  const what = `${owner}: ${server.host}:${dir}/vm.xml`;
  if (listed.vmXml.length === 0) throw new StorageError('NOT_FOUND', `${what} is missing`);
  const xml = decodeBackupVmXml(Buffer.from(listed.vmXml).toString('utf8'), what);
  let size: number | undefined;
  try {
    size = parseVm(xml, u.vmId).disk(u.diskId)?.size;
  } catch (err) {
    throw new StorageError('BAD_IMAGE', `${what}: ${oneLine((err as Error).message)}`);
  }
  if (size === undefined || size <= 0)
    throw new StorageError('BAD_IMAGE', `${what} has no DISK ${u.diskId} with a SIZE`);
  return size;
}
