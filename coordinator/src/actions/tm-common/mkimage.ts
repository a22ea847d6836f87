import { StorageError } from '../../../../common/src/errors.js';
import { NO_OUTPUT, type ActionContext, type ActionResult } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { imageFormat } from '../disk-facts.js';
import { diskIdOf, dirname, type HostPath } from '../host-path.js';
import { MKIMAGE_ARGS, MKSWAP_ARGS } from '../oned-signatures.js';
import { fetchVm } from '../vm-lookup.js';
import { checkPath } from '../preflight.js';
import { enableLocalMonitoring } from './monitoring-marker.js';

/**
 * mkimage (tm/common, docs/opennebula/tm-actions.md#mkimage): a volatile disk of size_mb MiB, raw or qcow2; with DISK/FS
 * the filesystem is made first; SPARSE=no allocates it fully. The VM directory is created and
 * the system datastore marked for host-side monitoring, as clone does. A repeat makes the same
 * empty disk again.
 */
export const mkimage = defineAction(
  {
    signature: MKIMAGE_ARGS,
    does: 'makes a volatile disk, raw or qcow2, formatted with DISK/FS, fully allocated with SPARSE=no',
  },
  async (ctx, args) => makeVolatile(ctx, args.destination, args.size_mb, args.format, args.vm_id),
);

/** mkswap (tm/common): mkimage with the swap format. */
export const mkswap = defineAction(
  { signature: MKSWAP_ARGS, does: 'makes a raw swap disk' },
  async (ctx, args) => makeVolatile(ctx, args.destination, args.size_mb, 'swap', args.vm_id),
);

async function makeVolatile(
  ctx: ActionContext,
  destination: HostPath,
  sizeMb: number,
  formatArg: string,
  vmId: number,
): Promise<ActionResult> {
  // What oned may send as the format: raw, qcow2, or swap, a swap area being a raw image
  // (docs/opennebula/tm-actions.md#mkimage).
  const format = formatArg.toLowerCase();
  const swap = format === 'swap';
  const imageFmt = imageFormat(swap ? 'raw' : format);
  if (imageFmt === undefined)
    throw new StorageError(
      'INVALID_ARGUMENT',
      `argument format "${formatArg}" is not one of raw, qcow2, swap`,
    );
  if (sizeMb <= 0)
    throw new StorageError('INVALID_ARGUMENT', `argument size_mb must be positive, got ${sizeMb}`);
  const diskId = diskIdOf(destination.path);
  const disk = diskId === undefined ? undefined : (await fetchVm(ctx, vmId)).disk(diskId);
  const filesystem = swap ? '' : (disk?.get('FS') ?? '');
  // The agent checks the path, the format and the filesystem before it makes the VM directory, and
  // the datastore is marked for monitoring only once the disk is there (preflight.ts).
  await checkPath(ctx, destination);
  await ctx.ops.call(destination.host, 'createImage', {
    path: destination.path,
    sizeMb,
    format: imageFmt,
    swap,
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
