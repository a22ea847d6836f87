/**
 * The backup datastore's `rm` (docs/backups.md#the-backup-datastore): every increment directory of
 * the backup image goes from the backup server (RemoveBackups), with the VM's directory there when
 * left empty. Directories already gone are fine: a repeat succeeds.
 */
import { defineAction } from '../define-action.js';
import { DS_IMAGE_ARGS } from '../oned-signatures.js';
import { parseBackupActionData, need } from './backup-action-data.js';
import { readBackupImage } from './backup-image.js';
import { backupServer } from './backup-server.js';

export const rmBackup = defineAction(
  {
    signature: DS_IMAGE_ARGS,
    does: "removes every increment of the backup from the backup server (and the VM's directory there when left empty)",
  },
  async (ctx, { image_id: imageId }) => {
    const data = parseBackupActionData(ctx.stdin, `image ${imageId}`);
    const image = readBackupImage(need(data, 'IMAGE'), `image ${imageId}`);
    const server = backupServer(ctx, data.datastore);
    const dirs = image.increments.map((i) => `${server.basePath}/${image.vmId}/${i.bid}`);
    const r = await ctx.ops.call(server.host, 'removeBackups', { backupDirs: dirs });
    ctx.info(
      `${ctx.action}: image ${imageId}: ${r.removed} of ${dirs.length} backup directories removed from ${server.host}`,
    );
    return { stdout: '' };
  },
);
