import { StorageError, oneLine } from '../../../../common/src/errors.js';
import { TM_DRIVER_SHARED } from '../../../../common/src/drivers/driver-actions.js';
import { ImageFormat, RestoreLayout } from '../../../../proto/gen/onestorage/agent/v1/agent.js';
import { ImageType } from '../../oned/image-xml.js';
import type { VmDisk } from '../../oned/vm-disk.js';
import type { VmInfo } from '../../oned/vm-xml.js';
import { type XmlElement, parseXmlRoot } from '../../oned/xml-element.js';
import type { ActionContext } from '../action-context.js';
import {
  type BackupImage,
  type BackupIncrement,
  chainUpTo,
  readBackupImage,
} from '../ds-backup/backup-image.js';
import { diskFormat } from '../disk-facts.js';
import { cleanPath } from '../host-path.js';

/** The backup a TM restore reads (docs/backups.md#tm-restore): the image, its chain, its datastore. */
export interface RestorePoint {
  imageId: number;
  image: BackupImage;
  /** The increments to apply, oldest first. */
  chain: BackupIncrement[];
  /** The backup datastore (IMAGE/DATASTORE_ID). */
  dsId: number;
}

/**
 * Reads backup image `imageId` from oned and the chain up to `incId` (-1: the last). The image must
 * be a BACKUP image of VM `vmId`.
 */
export async function restorePoint(
  ctx: ActionContext,
  imageId: number,
  incId: number,
  vmId: number,
): Promise<RestorePoint> {
  const owner = `image ${imageId}`;
  let root: XmlElement;
  try {
    root = parseXmlRoot(await ctx.oned.imageXml(imageId), 'IMAGE', owner);
  } catch (err) {
    throw new StorageError('ONED_FAILED', oneLine(err instanceof Error ? err.message : String(err)), {
      cause: err,
    });
  }
  const type = root.int('TYPE');
  if (type !== ImageType.Backup) {
    throw new StorageError('INVALID_ARGUMENT', `${owner} is not a backup image (TYPE ${type ?? '?'})`);
  }
  const dsId = root.requireInt('DATASTORE_ID');
  const image = readBackupImage(root, owner);
  if (image.vmId !== vmId) {
    throw new StorageError('INVALID_ARGUMENT', `${owner} is a backup of VM ${image.vmId}, not of VM ${vmId}`);
  }
  return { imageId, image, chain: chainUpTo(image, incId, owner), dsId };
}

/** One disk to restore: where its restore point is received and how it is put in place. */
export interface DiskRestore {
  diskId: number;
  format: ImageFormat;
  layout: RestoreLayout;
  /** oned-view paths on the VM's host. */
  diskPath: string;
  staging: string;
  /** RESTORE_LAYOUT_IMAGE: the persistent image's SOURCE. */
  source: string;
}

/**
 * The disks of the VM that a restore may touch: `diskId` alone, or (-1) every disk with an image
 * or a volatile file, the context CD-ROM excepted. Which of them the backup holds is asked of the
 * backup server afterwards.
 */
export function candidateDisks(vm: VmInfo, diskId: number): VmDisk[] {
  if (diskId >= 0) {
    const d = vm.disk(diskId);
    if (!d) throw new StorageError('NOT_FOUND', `VM ${vm.id} has no disk ${diskId}`);
    return [d];
  }
  return vm.disks.filter((d) => d.diskId !== vm.contextDiskId && d.type?.toUpperCase() !== 'CDROM');
}

/**
 * How each TM driver keeps a restored disk: local mode, a plain file at disk.N (OpenNebula's ssh
 * restore); shared mode, `disk.N -> disk.N.snap/0` for a qcow2 copy, a plain file for a raw one,
 * and a persistent image used in place gets its SOURCE replaced (OpenNebula's qcow2 restore).
 */
export function diskRestore(ctx: ActionContext, vmDir: string, disk: VmDisk): DiskRestore {
  const format = diskFormat(disk, `VM ${disk.vmId} DISK ${disk.diskId}`);
  const diskPath = `${vmDir}/disk.${disk.diskId}`;
  const inPlace =
    ctx.driver === TM_DRIVER_SHARED && !disk.isVolatile && disk.clone !== true && disk.source !== undefined;
  if (inPlace) {
    const source = cleanPath(disk.source as string);
    return {
      diskId: disk.diskId,
      format,
      layout: RestoreLayout.RESTORE_LAYOUT_IMAGE,
      diskPath,
      staging: `${source}.backup`,
      source,
    };
  }
  const snapDir = ctx.driver === TM_DRIVER_SHARED && format === ImageFormat.IMAGE_FORMAT_QCOW2;
  return {
    diskId: disk.diskId,
    format,
    layout: snapDir ? RestoreLayout.RESTORE_LAYOUT_SNAP_DIR : RestoreLayout.RESTORE_LAYOUT_PLAIN,
    diskPath,
    staging: `${diskPath}.backup`,
    source: '',
  };
}
