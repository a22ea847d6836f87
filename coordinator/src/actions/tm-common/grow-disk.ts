import { StorageError } from '../../../../common/src/errors.js';
import type { ImageFormat } from '../../../../proto/gen/onestorage/agent/v1/agent.js';
import type { VmDisk } from '../../oned/vm-disk.js';
import type { VmInfo } from '../../oned/vm-xml.js';
import type { ActionContext } from '../action-context.js';
import { basename, diskIdOf, type HostPath } from '../host-path.js';

/**
 * The DISK a `.../disk.N` path names, or undefined for a VM directory; a disk id the VM does not
 * have is refused.
 */
export function diskNamedBy(vm: VmInfo, path: string): VmDisk | undefined {
  const diskId = diskIdOf(path);
  const disk = diskId === undefined ? undefined : vm.disk(diskId);
  if (diskId !== undefined && !disk) {
    throw new StorageError('INVALID_ARGUMENT', `VM ${vm.id} has no DISK with DISK_ID=${diskId}`);
  }
  return disk;
}

/**
 * Grows the disk at `at` to `sizeMb` MiB with qemu-img resize; the new space is preallocated only
 * when the DISK says SPARSE=no, as the bash scripts do it (not the inverted Ruby way, docs/opennebula/known-bugs.md#resize-preallocation).
 * Returns whether the size changed (a repeat finds it right already).
 */
export async function growDisk(
  ctx: ActionContext,
  at: HostPath,
  disk: VmDisk | undefined,
  sizeMb: number,
  format: ImageFormat,
): Promise<boolean> {
  const r = await ctx.ops.call(at.host, 'resize', {
    path: at.path,
    sizeMb,
    preallocate: disk?.sparse === false,
    format,
  });
  return r.changed;
}

/**
 * A new copy of an image grows to the DISK's SIZE when that exceeds ORIGINAL_SIZE (the image's own
 * size), said in an INFO line.
 */
export async function growToDiskSize(
  ctx: ActionContext,
  at: HostPath,
  disk: VmDisk | undefined,
  format: () => ImageFormat,
): Promise<void> {
  const size = disk?.size;
  const originalSize = disk?.originalSize;
  if (size === undefined || originalSize === undefined || size <= originalSize) return;
  await growDisk(ctx, at, disk, size, format());
  ctx.info(`${ctx.action}: grew ${basename(at.path)} from ${originalSize} MiB to ${size} MiB`);
}
