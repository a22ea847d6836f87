import type { ImageFormat } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { LcmState } from '../oned/vm-state.js';
import type { VmInfo } from '../oned/vm-xml.js';
import type { ActionContext } from './action-context.js';
import type { HostPath } from './host-path.js';
import { liveDisk } from './live-disk.js';

/** cpds' snap_id -1: save the disk itself, not one of its snapshots. */
export const CURRENT_STATE = -1;

/**
 * Writes a standalone copy of a disk (snapId -1) or of one of its snapshots into `destination` on
 * the disk's own host: `qemu-img convert` of the flattened chain, or, while oned saves a RUNNING
 * VM's disk (HOTPLUG_SAVEAS; a snapshot file is never written by the VM), a libvirt block copy
 * (CopyDiskLive), which refuses an existing destination, so a repeat's leftover is removed first.
 */
export async function saveDiskCopy(
  ctx: ActionContext,
  disk: HostPath,
  destination: string,
  c: {
    /** The copy's format. */
    format: ImageFormat;
    /** The disk's format as oned knows it (DISK/FORMAT): the agent reads the disk with -f. */
    sourceFormat: ImageFormat;
    snapId: number;
    /** '' for the default `<disk>.snap`. */
    snapDir: string;
    /** The VM, for cpds: a VM in HOTPLUG_SAVEAS runs and its disk is block-copied. */
    vm?: { info: VmInfo; diskId: number };
  },
): Promise<void> {
  if (c.vm?.info.lcmState === LcmState.HotplugSaveas && c.snapId === CURRENT_STATE) {
    await ctx.ops.call(disk.host, 'delete', { path: destination });
    await ctx.ops.call(disk.host, 'copyDiskLive', {
      diskPath: disk.path,
      destination,
      format: c.format,
      sourceFormat: c.sourceFormat,
      live: liveDisk(c.vm.info, c.vm.diskId),
    });
    return;
  }
  await ctx.ops.call(disk.host, 'convert', {
    source: disk.path,
    destination,
    format: c.format,
    sourceFormat: c.sourceFormat,
    sparse: true,
    snapshot: c.snapId === CURRENT_STATE ? undefined : { snapDir: c.snapDir, snapId: c.snapId },
    imageCurrentState: false,
  });
}
