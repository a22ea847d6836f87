import { LcmState } from '../../oned/vm-state.js';
import { NO_OUTPUT } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { diskIdOf } from '../host-path.js';
import { diskFormat } from '../disk-facts.js';
import { RESIZE_ARGS } from '../oned-signatures.js';
import { fetchVm } from '../vm-lookup.js';
import { growDisk } from './grow-disk.js';

/**
 * resize (tm/common, docs/opennebula/tm-actions.md#resize): grows the disk with qemu-img resize. A running VM's resize
 * (LCM DISK_RESIZE) is the hypervisor's job, so nothing is done here. Preallocation only when the
 * disk is not sparse (SPARSE=no), as the bash scripts do it (not the inverted Ruby way, docs/opennebula/known-bugs.md#resize-preallocation).
 * A repeat finds the size already right: no change.
 */
export const resizeDisk = defineAction(
  {
    signature: RESIZE_ARGS,
    does: "grows a powered-off VM's disk (preallocated with SPARSE=no); a running VM's is the hypervisor's",
  },
  async (ctx, { disk, size_mb: sizeMb, vm_id: vmId }) => {
    const vm = await fetchVm(ctx, vmId);
    if (vm.lcmState === LcmState.DiskResize) {
      ctx.info(`${ctx.action}: VM ${vmId} is running: the hypervisor resizes the disk`);
      return NO_OUTPUT;
    }
    const diskId = diskIdOf(disk.path);
    const d = diskId === undefined ? undefined : vm.disk(diskId);
    const format = diskFormat(d, `VM ${vmId} ${disk.path}`);
    if (await growDisk(ctx, disk, d, sizeMb, format))
      ctx.info(`${ctx.action}: ${disk.host}:${disk.path} is now ${sizeMb} MiB`);
    return NO_OUTPUT;
  },
);
