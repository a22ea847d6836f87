/**
 * The backup datastore's `ls [-i <increment>]` (docs/backups.md#the-backup-datastore), as
 * OpenNebula's TM restore and the restore action call it: the pseudo-URL of each disk of the
 * selected increment (the last one without -i), as JSON `{"<disk id>": "grpc_backup://..."}`.
 * A backup directory that is not on the backup server is NOT_FOUND.
 */
import { StorageError } from '../../../../common/src/errors.js';
import { formatBackupUrl } from '../../../../common/src/backups/backup-url.js';
import { declareAction } from '../define-action.js';
import { DS_BACKUP_LS_ARGS } from '../oned-signatures.js';
import type { ActionContext } from '../action-context.js';
import { parseBackupActionData, need } from './backup-action-data.js';
import { chainUpTo, readBackupImage } from './backup-image.js';
import { backupServer } from './backup-server.js';

const UINT = /^(0|[1-9]\d{0,9})$/;

export const lsBackup = declareAction(
  {
    signature: DS_BACKUP_LS_ARGS,
    does: 'prints the pseudo-URL of each disk of the selected increment (or the last) as JSON',
  },
  async (ctx) => {
    const incId = incrementArg(ctx.args);
    const data = parseBackupActionData(ctx.stdin, 'backup ls');
    const imageEl = need(data, 'IMAGE');
    const owner = `image ${imageEl.text('ID') ?? '?'}`;
    const image = readBackupImage(imageEl, owner);
    const chain = chainUpTo(image, incId, owner);
    const selected = chain[chain.length - 1];
    if (!selected) throw new StorageError('NOT_FOUND', `${owner}: backup has no increments`);
    const disks = await backupDisks(ctx, data, image.vmId, selected, owner);
    const out: Record<string, string> = {};
    for (const d of disks)
      out[String(d.diskId)] = formatBackupUrl({
        dsId: data.datastore.id,
        backupJobId: image.backupJobId,
        chain: chain.map(({ inc, bid }) => ({ inc, bid })),
        path: d.path,
      });
    return { stdout: `${JSON.stringify(out)}\n` };
  },
);

/** `[]` or `['-i', '<id>']`: the increment to list (undefined: the last). */
function incrementArg(args: readonly string[]): number | undefined {
  if (args.length === 0) return undefined;
  const [flag, id] = args;
  if (
    args.length !== 2 ||
    (flag !== '-i' && flag !== '--increment') ||
    id === undefined ||
    !/^-?\d{1,10}$/.test(id)
  )
    throw new StorageError(
      'INVALID_ARGUMENT',
      `expected no arguments or -i <increment id>, got ${JSON.stringify(args.join(' '))}`,
    );
  return Number(id);
}

/**
 * The disk files `disk.<disk>.<inc>` of one increment's directory on the backup server, by disk
 * id. NOT_FOUND naming the directory and the host when it is not there.
 */
export async function backupDisks(
  ctx: ActionContext,
  data: ReturnType<typeof parseBackupActionData>,
  vmId: number,
  increment: { inc: number; bid: string },
  owner: string,
): Promise<Array<{ diskId: number; path: string }>> {
  const server = backupServer(ctx, data.datastore);
  const dir = `${server.basePath}/${vmId}/${increment.bid}`;
  const listed = await ctx.ops.call(server.host, 'listBackup', { backupDir: dir, withTpmState: false });
  if (!listed.exists)
    throw new StorageError(
      'NOT_FOUND',
      `${owner}: backup ${increment.inc}:${increment.bid} is not on ${server.host} (${dir} is missing)`,
    );
  const out: Array<{ diskId: number; path: string }> = [];
  for (const f of listed.files) {
    const [prefix, disk, inc, more] = f.name.split('.');
    if (prefix !== 'disk' || more !== undefined || !UINT.test(disk ?? '') || inc !== String(increment.inc))
      continue;
    out.push({ diskId: Number(disk), path: `${dir}/${f.name}` });
  }
  return out.sort((a, b) => a.diskId - b.diskId);
}
