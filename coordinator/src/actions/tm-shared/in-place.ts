import { StorageError } from '../../../../common/src/errors.js';
import { NO_OUTPUT, type ActionContext, type ActionResult } from '../action-context.js';
import { diskIdOf, dirname, expectArgs, parseAbsolutePath, parseHostPath, parseId } from '../host-path.js';
import { checkPath, requireExisting } from '../preflight.js';
import { saveDiskCopy } from '../save-disk-copy.js';
import { fetchVm } from '../vm-lookup.js';
import { copyFormat, diskFormat, parseDiskArg, snapDirFor } from '../disk-facts.js';
import { withMadeDirectories } from '../made-directories.js';

/**
 * mv in shared mode (reference 2.3): disk-level calls and moves between hosts at the same path
 * have nothing to do (one filesystem); a change of system datastore moves the directory on the
 * destination host. A repeat finds the source gone and the destination present: success.
 */
export async function mvShared(ctx: ActionContext): Promise<ActionResult> {
  expectArgs(ctx.action, ctx.args, ['hostA:path', 'hostB:path', 'vm_id', 'ds_id']);
  const source = parseHostPath(ctx.args[0], 'source');
  const destination = parseHostPath(ctx.args[1], 'destination');
  parseId(ctx.args[2], 'vm_id');
  parseId(ctx.args[3], 'ds_id');
  if (diskIdOf(source.path) !== undefined || source.path === destination.path) return NO_OUTPUT;
  const st = await ctx.ops.call(destination.host, 'stat', { path: source.path, follow: false });
  if (!st.exists) {
    if ((await ctx.ops.call(destination.host, 'stat', { path: destination.path, follow: false })).exists)
      return NO_OUTPUT;
    throw new StorageError(
      'NOT_FOUND',
      `neither ${source.path} nor ${destination.path} exists on ${destination.host}`,
    );
  }
  // A copy that fails takes away the directories this call made for it.
  await withMadeDirectories(ctx, async (dirs) => {
    await dirs.make({ host: destination.host, path: dirname(destination.path) });
    await ctx.ops.call(destination.host, 'copy', {
      source: source.path,
      destination: destination.path,
      sparse: true,
    });
  });
  await ctx.ops.call(destination.host, 'delete', { path: source.path });
  return NO_OUTPUT;
}

/** mvds in shared mode: the persistent image was used in place; nothing to copy back. */
export async function mvdsShared(ctx: ActionContext): Promise<ActionResult> {
  expectArgs(ctx.action, ctx.args, ['host:remote_system_ds/disk.i', 'SOURCE', 'vm_id', 'ds_id']);
  parseHostPath(ctx.args[0], 'disk');
  parseAbsolutePath(ctx.args[1], 'SOURCE');
  parseId(ctx.args[2], 'vm_id');
  parseId(ctx.args[3], 'ds_id');
  return NO_OUTPUT;
}

/**
 * cpds in shared mode: the host writes the new image straight into the image datastore it mounts,
 * from the disk or from one of its snapshots (in `<SOURCE>.snap` for a persistent image).
 */
export async function cpdsShared(ctx: ActionContext): Promise<ActionResult> {
  expectArgs(ctx.action, ctx.args, [
    'host:remote_system_ds/disk.i',
    'SOURCE',
    'snapshot_id',
    'vm_id',
    'ds_id',
  ]);
  const disk = parseDiskArg(ctx.args[0], 'disk');
  const target = parseAbsolutePath(ctx.args[1], 'SOURCE');
  const snapId = parseId(ctx.args[2], 'snapshot_id');
  const vmId = parseId(ctx.args[3], 'vm_id');
  parseId(ctx.args[4], 'ds_id');
  const vm = await fetchVm(ctx, vmId);
  const d = vm.disk(disk.diskId);
  const format = copyFormat(d);
  const sourceFormat = diskFormat(d, `VM ${vmId} DISK ${disk.diskId}`);
  const snapDir = snapDirFor(ctx, d);
  // The disk and SOURCE are checked before SOURCE's directory is made (preflight.ts).
  await requireExisting(ctx, disk, 'disk');
  await checkPath(ctx, { host: disk.host, path: target });
  // A copy that fails takes away the directories this call made for SOURCE.
  await withMadeDirectories(ctx, async (dirs) => {
    await dirs.make({ host: disk.host, path: dirname(target) });
    await saveDiskCopy(ctx, disk, target, {
      format,
      sourceFormat,
      snapId,
      snapDir,
      vm: { info: vm, diskId: disk.diskId },
    });
  });
  return NO_OUTPUT;
}
