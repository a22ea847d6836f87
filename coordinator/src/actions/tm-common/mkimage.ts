import { StorageError } from '../../../../common/src/errors.js';
import { NO_OUTPUT, type ActionContext, type ActionResult } from '../action-context.js';
import { diskIdOf, dirname, expectArgs, parseHostPath, parseId, type HostPath } from '../host-path.js';
import { fetchVm } from '../vm-lookup.js';
import { checkPath } from '../preflight.js';
import { enableLocalMonitoring } from './monitoring-marker.js';

/** What oned may send as MKIMAGE's format (reference 2.5). */
const FORMATS = new Set(['raw', 'qcow2', 'swap']);

/**
 * mkimage (tm/common, reference 2.5): a volatile disk of size_mb MiB, raw or qcow2; with DISK/FS
 * the filesystem is made first; SPARSE=no allocates it fully. The VM directory is created and
 * the system datastore marked for host-side monitoring, as clone does. A repeat makes the same
 * empty disk again.
 */
export async function mkimage(ctx: ActionContext): Promise<ActionResult> {
  expectArgs(ctx.action, ctx.args, ['size_mb', 'format', 'host:remote_system_ds/disk.i', 'vm_id', 'ds_id']);
  const sizeMb = parseId(ctx.args[0], 'size_mb');
  const format = (ctx.args[1] ?? '').toLowerCase();
  if (!FORMATS.has(format)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `argument format "${ctx.args[1] ?? ''}" is not one of raw, qcow2, swap`,
    );
  }
  return makeVolatile(
    ctx,
    parseHostPath(ctx.args[2], 'destination'),
    sizeMb,
    format,
    parseId(ctx.args[3], 'vm_id'),
  );
}

/** mkswap (tm/common): mkimage with the swap format. */
export async function mkswap(ctx: ActionContext): Promise<ActionResult> {
  expectArgs(ctx.action, ctx.args, ['size_mb', 'host:remote_system_ds/disk.i', 'vm_id', 'ds_id']);
  const sizeMb = parseId(ctx.args[0], 'size_mb');
  return makeVolatile(
    ctx,
    parseHostPath(ctx.args[1], 'destination'),
    sizeMb,
    'swap',
    parseId(ctx.args[2], 'vm_id'),
  );
}

async function makeVolatile(
  ctx: ActionContext,
  destination: HostPath,
  sizeMb: number,
  format: string,
  vmId: number,
): Promise<ActionResult> {
  parseId(ctx.args[ctx.args.length - 1], 'ds_id');
  if (sizeMb <= 0)
    throw new StorageError('INVALID_ARGUMENT', `argument size_mb must be positive, got ${sizeMb}`);
  const diskId = diskIdOf(destination.path);
  const disk = diskId === undefined ? undefined : (await fetchVm(ctx, vmId)).disk(diskId);
  const filesystem = format === 'swap' ? '' : (disk?.get('FS') ?? '');
  // The agent checks the path, the format and the filesystem before it makes the VM directory, and
  // the datastore is marked for monitoring only once the disk is there (preflight.ts).
  await checkPath(ctx, destination);
  await ctx.ops.call(destination.host, 'createImage', {
    path: destination.path,
    sizeMb,
    format,
    filesystem,
    filesystemOptions: '',
    sparse: disk?.sparse !== false,
  });
  await enableLocalMonitoring(ctx, { host: destination.host, path: dirname(dirname(destination.path)) });
  ctx.info(
    `${ctx.action}: made ${format}${filesystem ? ` (${filesystem})` : ''} ${sizeMb} MiB at ${destination.host}:${destination.path}`,
  );
  return NO_OUTPUT;
}
