import { StorageError } from '../../../../common/src/errors.js';
import { formatChain } from '../../../../common/src/backups/backup-url.js';
import { defineAction } from '../define-action.js';
import { DS_IMAGE_ARGS } from '../oned-signatures.js';
import { ACTION_DATA_ROOT, decodeActionData } from '../ds-image/ds-driver-action.js';
import { readBackupImage } from './backup-image.js';
import { backupServer } from './backup-server.js';

const KEEP_LAST = /^[1-9]\d{0,5}$/;

/**
 * Backup datastore `increment_flatten` (docs/backups.md#increment_flatten): with more increments
 * than EXTRA_DATA/KEEP_LAST, the first `count - KEEP_LAST + 1` backups are merged, on the backup
 * server (FlattenBackups), into the last of them, which becomes the chain's FULL; the older
 * directories go. Prints `<size_mb> <id>:<bid>,...` (the KEEP_LAST increments that remain, the first
 * now standing alone) for oned's update_increments; nothing when there is nothing to merge.
 */
export const incrementFlatten = defineAction(
  {
    signature: DS_IMAGE_ARGS,
    does: 'merges the oldest increments of a backup into the first one kept (KEEP_LAST) on the backup server and prints `size_mb id:bid,...`',
  },
  async (ctx, args) => {
    const owner = `image ${args.image_id}`;
    const root = decodeActionData(ctx.stdin, owner);
    const imageEl = root.child('IMAGE');
    const dsEl = root.child('DATASTORE');
    if (!imageEl || !dsEl)
      throw new StorageError(
        'INVALID_ARGUMENT',
        `${owner}: /${ACTION_DATA_ROOT}/IMAGE or DATASTORE is missing`,
      );
    const image = readBackupImage(imageEl, owner);
    const extra = root.child('EXTRA_DATA');
    const keepText = extra?.text('KEEP_LAST');
    if (keepText === undefined || !KEEP_LAST.test(keepText))
      throw new StorageError(
        'INVALID_ARGUMENT',
        `${owner}: /${ACTION_DATA_ROOT}/EXTRA_DATA/KEEP_LAST is not a positive number: ${JSON.stringify(keepText ?? '')}`,
      );
    const vmText = extra?.text('VM_ID');
    if (vmText !== undefined && vmText !== String(image.vmId))
      throw new StorageError(
        'INVALID_ARGUMENT',
        `${owner}: EXTRA_DATA/VM_ID ${JSON.stringify(vmText)} is not the backup's VM ${image.vmId}`,
      );
    const keepLast = Number(keepText);
    const incs = image.increments;
    if (incs.length <= keepLast) {
      ctx.info(
        `increment_flatten: ${owner} has ${incs.length} increments, KEEP_LAST ${keepLast}: nothing to merge`,
      );
      return { stdout: '' };
    }
    const server = backupServer(ctx, {
      id: dsEl.requireInt('ID'),
      basePath: dsEl.text('BASE_PATH'),
      template: dsEl.child('TEMPLATE')?.record() ?? {},
    });
    const merged = incs.slice(0, incs.length - keepLast + 1);
    const dirs = merged.map((i) => `${server.basePath}/${image.vmId}/${i.bid}`);
    ctx.info(
      `increment_flatten: ${owner}: merging ${formatChain(merged)} into ${merged[merged.length - 1]?.bid} on ${server.host}`,
    );
    const r = await ctx.ops.call(server.host, 'flattenBackups', { backupDirs: dirs });
    return { stdout: `${r.sizeMb} ${formatChain(incs.slice(-keepLast))}\n` };
  },
);
