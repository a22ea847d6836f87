import { StorageError } from '../../../common/src/errors.js';
import { TM_DRIVER_SHARED } from '../../../common/src/drivers/driver-actions.js';
import { ImageFormat } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { VmDisk } from '../oned/vm-disk.js';
import type { ActionContext } from './action-context.js';
import { cleanPath, diskIdOf, parseHostPath, type HostPath } from './host-path.js';

/** A `host:…/disk.N` argument with its disk id (snapshot, cpds and the other per-disk actions). */
export function parseDiskArg(arg: string | undefined, field: string): HostPath & { diskId: number } {
  const disk = parseHostPath(arg, field);
  const diskId = diskIdOf(disk.path);
  if (diskId === undefined)
    throw new StorageError('INVALID_ARGUMENT', `argument ${field} "${arg ?? ''}" does not name disk.N`);
  return { ...disk, diskId };
}

/**
 * The one map from oned's format names (DISK/FORMAT, DISK/DRIVER, mkimage's format argument; in
 * any case) to the agent's contract: qcow2 and raw are the formats the drivers handle; any other
 * name is undefined, and the caller decides (refuses it naming where it came from, or writes raw).
 */
export function imageFormat(name: 'raw' | 'qcow2'): ImageFormat;
export function imageFormat(name: string): ImageFormat | undefined;
export function imageFormat(name: string): ImageFormat | undefined {
  switch (name.toLowerCase()) {
    case 'qcow2':
      return ImageFormat.IMAGE_FORMAT_QCOW2;
    case 'raw':
      return ImageFormat.IMAGE_FORMAT_RAW;
    default:
      return undefined;
  }
}

/** The image format a new copy of the disk gets: qcow2 stays qcow2, anything else is written raw. */
export function copyFormat(disk: VmDisk | undefined): ImageFormat {
  return imageFormat(disk?.format ?? 'raw') ?? ImageFormat.IMAGE_FORMAT_RAW;
}

/**
 * Where a disk's snapshots live: beside the disk ('' = the agent's default `<disk>.snap`), except
 * for a persistent image used in place by the shared driver, whose snapshots stay with the image in
 * `<SOURCE>.snap` (docs/opennebula/snapshots.md#persistent-images-in-shared-mode). A mixed-mode call (`snap_create.ssh`) is about a local copy
 * of the disk, so its snapshots are beside it.
 */
export function snapDirFor(ctx: ActionContext, disk: VmDisk | undefined): string {
  const sharedInPlace = ctx.driver === TM_DRIVER_SHARED && !ctx.action.includes('.');
  return sharedInPlace && disk?.clone !== true && disk?.source ? `${cleanPath(disk.source)}.snap` : '';
}

/** DISK/TYPE of a volatile swap disk: OpenNebula's mkswap makes it raw (docs/opennebula/driver-inputs.md#fields-the-tm-scripts-read). */
const SWAP_TYPE = 'swap';

/**
 * The format oned knows for a disk, which the agent needs with every RPC that opens it (it never
 * lets qemu guess: a raw disk whose guest wrote a qcow2 header must stay raw). DISK/FORMAT (oned
 * copies IMAGE/FORMAT into it), else DISK/DRIVER; a swap disk, or a volatile disk without either, is
 * raw, as mkimage makes it. Anything but raw or qcow2, or an image disk with neither attribute, is
 * refused naming VM, disk and attribute. Returned as the agent's contract spells it.
 */
export function diskFormat(disk: VmDisk | undefined, owner: string): ImageFormat {
  if (!disk) throw new StorageError('INVALID_ARGUMENT', `${owner}: no DISK to take the image format from`);
  const name = disk.format !== undefined ? 'FORMAT' : disk.get('DRIVER') !== undefined ? 'DRIVER' : undefined;
  const value = (name === undefined ? undefined : disk.get(name))?.toLowerCase();
  if (value === undefined) {
    if (disk.isVolatile || disk.type?.toLowerCase() === SWAP_TYPE) return ImageFormat.IMAGE_FORMAT_RAW;
    throw new StorageError(
      'INVALID_ARGUMENT',
      `VM ${disk.vmId} DISK ${disk.diskId} has neither FORMAT nor DRIVER: its image format is unknown`,
    );
  }
  const format = imageFormat(value);
  if (format === undefined) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `VM ${disk.vmId} DISK ${disk.diskId} ${name} is ${JSON.stringify(value)}; only raw and qcow2 are supported`,
    );
  }
  return format;
}
