/**
 * The backup datastore's `stat` (docs/backups.md#the-backup-datastore): IMAGE/PATH is a
 * grpc_backup:// URL; prints the size in MiB its disk takes once restored.
 */
import { StorageError } from '../../../../common/src/errors.js';
import { defineAction } from '../define-action.js';
import { DS_STAT_ARGS } from '../oned-signatures.js';
import { parseBackupActionData, need } from './backup-action-data.js';
import { restoredSizeMb } from './restored-size.js';

export const statBackup = defineAction(
  {
    signature: DS_STAT_ARGS,
    does: "prints the size in MiB the disk of a grpc_backup:// IMAGE/PATH takes once restored (its DISK/SIZE in the backup's vm.xml)",
  },
  async (ctx, { request_id: requestId }) => {
    const data = parseBackupActionData(ctx.stdin, `stat request ${requestId}`);
    const path = need(data, 'IMAGE').text('PATH') ?? '';
    if (path === '')
      throw new StorageError('INVALID_ARGUMENT', 'stdin: /DS_DRIVER_ACTION_DATA/IMAGE/PATH is missing');
    return { stdout: `${await restoredSizeMb(ctx, path, 'image')}\n` };
  },
);
