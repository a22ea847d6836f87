import { StorageError } from '../../../../common/src/errors.js';
import { NO_OUTPUT, type ActionContext, type ActionResult } from '../action-context.js';
import { copyFormat, diskFormat, parseDiskArg } from '../disk-facts.js';
import { expectArgs, parseAbsolutePath, parseId } from '../host-path.js';
import { checkPath, requireExisting } from '../preflight.js';
import { flattenTo } from './flatten-to.js';
import { CURRENT_STATE, saveDiskCopy } from '../save-disk-copy.js';
import { fetchVm } from '../vm-lookup.js';

const USAGE = ['host:remote_system_ds/disk.i', 'SOURCE', 'snapshot_id', 'vm_id', 'ds_id'];

/**
 * cpds of a VM's disk (reference 2.2, 2.4): the disk, or its snapshot snap_id, becomes a
 * new image at SOURCE on the front-end. The host flattens it (a qcow2 chain becomes one standalone
 * image) into a temporary file in the VM directory, which then moves to the front-end and is removed.
 * A repeat writes the same image again.
 */
export async function cpdsLocal(ctx: ActionContext): Promise<ActionResult> {
  expectArgs(ctx.action, ctx.args, USAGE);
  const disk = parseDiskArg(ctx.args[0], 'disk');
  const image = { host: ctx.agents.frontend, path: parseAbsolutePath(ctx.args[1], 'SOURCE') };
  const snapId = parseId(ctx.args[2], 'snapshot_id');
  const vmId = parseId(ctx.args[3], 'vm_id');
  parseId(ctx.args[4], 'ds_id');
  if (snapId < CURRENT_STATE)
    throw new StorageError('INVALID_ARGUMENT', `argument snapshot_id ${snapId} is not -1 or a snapshot id`);
  await requireExisting(ctx, disk, 'disk');
  await checkPath(ctx, image);
  const vm = await fetchVm(ctx, vmId);
  const d = vm.disk(disk.diskId);
  const format = copyFormat(d);
  const sourceFormat = diskFormat(d, `VM ${vmId} DISK ${disk.diskId}`);
  await flattenTo(ctx, disk, image, (flat) =>
    saveDiskCopy(ctx, disk, flat, {
      format,
      sourceFormat,
      snapId,
      snapDir: '',
      vm: { info: vm, diskId: disk.diskId },
    }),
  );
  return NO_OUTPUT;
}
