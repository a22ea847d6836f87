import { LcmState } from '../../oned/vm-state.js';
import { NO_OUTPUT, type ActionContext, type ActionResult } from '../action-context.js';
import { diskIdOf, expectArgs, parseHostPath, parseId } from '../host-path.js';
import { diskFormat } from '../disk-facts.js';
import { fetchVm } from '../vm-lookup.js';

const USAGE = ['host:remote_system_ds/disk.i', 'size_mb', 'vm_id', 'ds_id'];

/**
 * resize (tm/common, reference 2.5): grows the disk with qemu-img resize. A running VM's resize
 * (LCM DISK_RESIZE) is the hypervisor's job, so nothing is done here. Preallocation only when the
 * disk is not sparse (SPARSE=no), as the bash scripts do it (not the inverted Ruby way, reference 8).
 * A repeat finds the size already right: no change.
 */
export async function resizeDisk(ctx: ActionContext): Promise<ActionResult> {
  expectArgs(ctx.action, ctx.args, USAGE);
  const disk = parseHostPath(ctx.args[0], 'disk');
  const sizeMb = parseId(ctx.args[1], 'size_mb');
  const vmId = parseId(ctx.args[2], 'vm_id');
  parseId(ctx.args[3], 'ds_id');
  const vm = await fetchVm(ctx, vmId);
  if (vm.lcmState === LcmState.DiskResize) {
    ctx.info(`${ctx.action}: VM ${vmId} is running: the hypervisor resizes the disk`);
    return NO_OUTPUT;
  }
  const diskId = diskIdOf(disk.path);
  const d = diskId === undefined ? undefined : vm.disk(diskId);
  const sparse = d?.sparse !== false;
  const format = diskFormat(d, `VM ${vmId} ${disk.path}`);
  const r = await ctx.ops.call(disk.host, 'resize', {
    path: disk.path,
    sizeMb,
    preallocate: !sparse,
    format,
  });
  if (r.changed) ctx.info(`${ctx.action}: ${disk.host}:${disk.path} is now ${sizeMb} MiB`);
  return NO_OUTPUT;
}
