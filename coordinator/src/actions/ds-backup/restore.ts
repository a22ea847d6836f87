import { formatBackupUrl, parseBackupUrl } from '../../../../common/src/backups/backup-url.js';
import { StorageError } from '../../../../common/src/errors.js';
import type { ActionContext } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { DS_STAT_ARGS } from '../oned-signatures.js';
import { chainUpTo } from './backup-image.js';
import { backupServer, type BackupServer } from './backup-server.js';
import { parseRestoreRequest, type RestoreRequest } from './restore-request.js';
import { RestoredObjects, restoreOwner } from './restore-objects.js';
import { readBackupVm, renderTemplate, restoreVmTemplate } from './restore-template.js';

/** disk.<disk_id>.<increment_id>; the vTPM state is disk.tpm.0 and is no disk. */
const DISK_FILE = /^disk\.(0|[1-9]\d{0,9})\.(0|[1-9]\d{0,9})$/;
/** What oned prints for "no template" when only one disk was restored. */
const NO_TEMPLATE = -1;

/**
 * Backup datastore `restore` (oned RESTORE, docs/backups.md#the-restore-action): one image per disk of the
 * chosen restore point in DESTINATION_DS_ID, each registered from its grpc_backup:// pseudo-URL
 * (the destination datastore's cp fetches it), and unless DISK_ID is given a VM template from the
 * backup's vm.xml pointing at them; all owned by TEMPLATE/USERNAME. Prints `<template id> <image
 * id>...` (-1: no template). A failure deletes whatever it had created.
 */
export const restoreBackup = defineAction(
  {
    // Same shape as stat: the request id, DS_DRIVER_ACTION_DATA in base64 on stdin.
    signature: DS_STAT_ARGS,
    does: 'registers images (and a VM template) from a backup in an image datastore; prints "<template id> <image id>..."',
  },
  async (ctx, args) => {
    const req = parseRestoreRequest(ctx.stdin, String(args.request_id));
    const server = backupServer(ctx, req.datastore);
    const chain = chainUpTo(req.image, req.incrementId, req.owner).map(({ inc, bid }) => ({ inc, bid }));
    const point = chain[chain.length - 1] as (typeof chain)[number];
    const dir = `${server.basePath}/${req.image.vmId}/${point.bid}`;
    const where = `${server.host}:${dir}`;

    // The vTPM state goes into the new template, so it is read only when there is one to make.
    const listing = await ctx.ops.call(server.host, 'listBackup', {
      backupDir: dir,
      withTpmState: req.diskId === undefined,
    });
    if (!listing.exists) {
      throw new StorageError('NOT_FOUND', `${req.owner}: backup ${point.bid} is missing: no ${where}`);
    }
    const disks = diskIds(
      listing.files.map((f) => f.name),
      point.inc,
    );
    if (disks.length === 0) {
      throw new StorageError('BAD_IMAGE', `${req.owner}: ${where} holds no disk.<id>.${point.inc} file`);
    }
    if (req.diskId !== undefined && !disks.includes(req.diskId)) {
      throw new StorageError(
        'NOT_FOUND',
        `${req.owner}: backup ${point.bid} has no disk ${req.diskId} (it has ${disks.join(', ')})`,
      );
    }
    const vm =
      req.diskId === undefined
        ? readBackupVm(Buffer.from(listing.vmXml).toString('utf8'), `${where}/vm.xml`)
        : undefined;
    const baseName = req.name ?? `${req.image.vmId}-${point.bid}`;
    const owner = await restoreOwner(ctx, req.username, req.owner);

    const made = new RestoredObjects(ctx, owner);
    try {
      const imageIds = new Map<number, number>();
      for (const disk of req.diskId === undefined ? disks : [req.diskId]) {
        checkNotCancelled(ctx);
        const url = diskUrl(req, server, chain, `${dir}/disk.${disk}.${point.inc}`);
        imageIds.set(disk, await made.image(imageTemplate(req, baseName, disk, url), req.destinationDsId));
      }
      let templateId = NO_TEMPLATE;
      if (vm !== undefined) {
        checkNotCancelled(ctx);
        const t = restoreVmTemplate(vm, imageIds, {
          name: baseName,
          noIp: req.noIp,
          noNic: req.noNic,
          tpmState: listing.tpmState,
        });
        templateId = await made.vmTemplate(t.text);
        reportTemplate(ctx, t);
      }
      ctx.logger.info({ templateId, images: [...imageIds], owner: owner?.name }, 'restored');
      return { stdout: `${templateId} ${[...imageIds.values()].join(' ')}\n` };
    } catch (err) {
      const undone = await made.undo();
      const e = err instanceof StorageError ? err : new StorageError('INTERNAL', String(err));
      throw new StorageError(
        e.reason ?? 'INTERNAL',
        `${req.owner}: restore failed: ${e.message} (${undone})`,
        {
          cause: err,
        },
      );
    }
  },
);

/** The disk ids of the restore point's files, ascending. */
function diskIds(names: readonly string[], inc: number): number[] {
  return names
    .flatMap((n) => {
      const m = DISK_FILE.exec(n);
      return m && Number(m[2]) === inc ? [Number(m[1])] : [];
    })
    .sort((a, b) => a - b);
}

function diskUrl(
  req: RestoreRequest,
  server: BackupServer,
  chain: ReadonlyArray<{ inc: number; bid: string }>,
  path: string,
): string {
  const url = formatBackupUrl({ dsId: server.dsId, backupJobId: req.image.backupJobId, chain, path });
  parseBackupUrl(url, `${req.owner}: restore URL`); // a BASE_PATH the grammar cannot carry fails here
  return url;
}

/** An image as rsync's restore registers it: OS for disk 0, DATABLOCK for the others. */
function imageTemplate(req: RestoreRequest, baseName: string, disk: number, url: string): string {
  const attrs = new Map<string, string[]>([
    ['NAME', [`${baseName}-disk-${disk}`]],
    ['TYPE', [disk === 0 ? 'OS' : 'DATABLOCK']],
    ['PATH', [url]],
    ['FROM_BACKUP_DS', [String(req.datastore.id)]],
  ]);
  if (req.image.backupJobId !== undefined) attrs.set('BACKUP_JOB_ID', [String(req.image.backupJobId)]);
  return renderTemplate(attrs).text;
}

function reportTemplate(ctx: ActionContext, t: ReturnType<typeof restoreVmTemplate>): void {
  for (const k of t.keptDisks) {
    ctx.info(
      `restore: disk ${k.diskId} is not in the backup; the template keeps its image ${k.imageId ?? '(none)'}`,
    );
  }
  if (t.dropped.length > 0) {
    ctx.info(
      `restore: left out of the template (value not writable in oned's syntax): ${t.dropped.join(', ')}`,
    );
  }
}

function checkNotCancelled(ctx: ActionContext): void {
  if (ctx.signal.aborted)
    throw new StorageError(
      'INTERNAL',
      `${ctx.action} request ${ctx.args[0] ?? ''}: cancelled before it finished (the shim or the coordinator stopped)`,
    );
}
