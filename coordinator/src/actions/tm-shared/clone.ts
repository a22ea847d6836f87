import { StorageError } from '../../../../common/src/errors.js';
import { NO_OUTPUT, type ActionContext, type ActionResult } from '../action-context.js';
import { basename, diskIdOf, expectArgs, parseHostPath, parseId } from '../host-path.js';
import { checkPath, requireExisting } from '../preflight.js';
import { diskFormat } from '../disk-facts.js';
import { fetchVm, vmDiskFormat } from '../vm-lookup.js';

const USAGE = ['fe:SOURCE', 'host:remote_system_ds/disk.i', 'vm_id', 'ds_id'];

/**
 * clone in shared mode (qcow2/shared, reference 2.3): the image and system datastores are one
 * filesystem the host mounts, so the host's agent does everything in place: a qcow2 image gets an
 * overlay (`disk.N → disk.N.snap/0`, backing on the image), a full copy with QCOW2_STANDALONE, a raw
 * image a plain copy; the disk grows when SIZE exceeds ORIGINAL_SIZE. Nothing crosses the network.
 */
export async function cloneShared(ctx: ActionContext): Promise<ActionResult> {
  expectArgs(ctx.action, ctx.args, USAGE);
  const source = parseHostPath(ctx.args[0], 'SOURCE');
  const destination = parseHostPath(ctx.args[1], 'destination');
  const vmId = parseId(ctx.args[2], 'vm_id');
  parseId(ctx.args[3], 'ds_id');
  const diskId = diskIdOf(destination.path);
  const vm = await fetchVm(ctx, vmId);
  const disk = diskId === undefined ? undefined : vm.disk(diskId);
  if (diskId !== undefined && !disk) {
    throw new StorageError('INVALID_ARGUMENT', `VM ${vmId} has no DISK with DISK_ID=${diskId}`);
  }
  const sparse = disk?.sparse !== false;
  const format = diskFormat(disk, `VM ${vmId} ${destination.path}`);
  // The host reads the image through its own mount. The agent makes the VM directory itself, after
  // its own checks of the image (preflight.ts).
  await requireExisting(ctx, { host: destination.host, path: source.path }, 'image');
  await checkPath(ctx, destination);
  const r = await ctx.ops.call(destination.host, 'cloneOverlay', {
    source: source.path,
    diskPath: destination.path,
    standalone: disk?.qcow2Standalone === true,
    sparse,
    format,
  });
  const size = disk?.size;
  const originalSize = disk?.originalSize;
  if (size !== undefined && originalSize !== undefined && size > originalSize) {
    await ctx.ops.call(destination.host, 'resize', {
      path: destination.path,
      sizeMb: size,
      preallocate: !sparse,
      format,
    });
    ctx.info(`${ctx.action}: grew ${basename(destination.path)} from ${originalSize} MiB to ${size} MiB`);
  }
  ctx.info(`${ctx.action}: ${r.format} ${basename(destination.path)} made in place on ${destination.host}`);
  return NO_OUTPUT;
}

/**
 * ln in shared mode: a persistent image is used in place; its snapshots live in `<SOURCE>.snap` and
 * `disk.N` links to the latest one (reference 2.1).
 */
export async function lnShared(ctx: ActionContext): Promise<ActionResult> {
  expectArgs(ctx.action, ctx.args, USAGE);
  const source = parseHostPath(ctx.args[0], 'SOURCE');
  const destination = parseHostPath(ctx.args[1], 'destination');
  const vmId = parseId(ctx.args[2], 'vm_id');
  parseId(ctx.args[3], 'ds_id');
  const format = await vmDiskFormat(ctx, vmId, destination.path);
  await requireExisting(ctx, { host: destination.host, path: source.path }, 'image');
  await checkPath(ctx, destination);
  await ctx.ops.call(destination.host, 'linkImage', {
    source: source.path,
    diskPath: destination.path,
    format,
  });
  return NO_OUTPUT;
}
