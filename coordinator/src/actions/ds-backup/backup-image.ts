/**
 * A BACKUP image as oned describes it (IMAGE/SOURCE, IMAGE/BACKUP_INCREMENTS/INCREMENT, VMS/ID,
 * TEMPLATE/BACKUP_JOB_ID; docs/opennebula/backups.md#flow) and the increment chains the backup
 * datastore actions work on. The same reading serves DS_DRIVER_ACTION_DATA/IMAGE and the IMAGE
 * document oned's API returns (TM restore).
 */
import { StorageError } from '../../../../common/src/errors.js';
import type { ChainLink } from '../../../../common/src/backups/backup-url.js';
import type { XmlElement } from '../../oned/xml-element.js';

export interface BackupIncrement extends ChainLink {
  /** FULL or INCREMENT. */
  type: string;
  /** MiB, as oned recorded it. */
  sizeMb: number | undefined;
}

export interface BackupImage {
  imageId: number | undefined;
  /** The VM the backup is of (VMS/ID: a backup image has exactly one). */
  vmId: number;
  /** TEMPLATE/BACKUP_JOB_ID, when a backup job made it. */
  backupJobId: number | undefined;
  /** IMAGE/FORMAT: raw for file backups. */
  format: string | undefined;
  /** Every increment, by id, oldest first; a FULL-mode backup is one link `0:<SOURCE>`. */
  increments: BackupIncrement[];
}

const BACKUP_ID = /^[0-9a-f]{6,32}$/;
const UINT = /^(0|[1-9]\d{0,9})$/;

/** Reads an <IMAGE> element; `owner` names it in errors ("image 12"). */
export function readBackupImage(image: XmlElement, owner: string): BackupImage {
  const bad = (xpath: string, why: string): StorageError =>
    new StorageError('INVALID_ARGUMENT', `${owner}: ${image.path}/${xpath} ${why}`);
  const uint = (el: XmlElement, name: string, xpath: string): number => {
    const v = el.text(name);
    if (v === undefined || !UINT.test(v))
      throw bad(xpath, `is not a non-negative integer: ${JSON.stringify(v ?? '')}`);
    return Number(v);
  };
  const bid = (v: string | undefined, xpath: string): string => {
    if (v === undefined || !BACKUP_ID.test(v))
      throw bad(xpath, `is not a backup id: ${JSON.stringify(v ?? '')}`);
    return v;
  };
  const vmIds = image.child('VMS')?.children('ID') ?? [];
  const vmText = image.child('VMS')?.text('ID');
  if (vmText === undefined || vmIds.length > 1) throw bad('VMS/ID', 'must name exactly one VM');
  if (!UINT.test(vmText)) throw bad('VMS/ID', `is not a VM id: ${JSON.stringify(vmText)}`);
  const bj = image.child('TEMPLATE')?.text('BACKUP_JOB_ID');
  if (bj !== undefined && bj !== '' && !UINT.test(bj)) throw bad('TEMPLATE/BACKUP_JOB_ID', 'is not an id');
  const increments: BackupIncrement[] = (image.child('BACKUP_INCREMENTS')?.children('INCREMENT') ?? []).map(
    (inc) => {
      const size = inc.text('SIZE');
      return {
        inc: uint(inc, 'ID', 'BACKUP_INCREMENTS/INCREMENT/ID'),
        bid: bid(inc.text('SOURCE'), 'BACKUP_INCREMENTS/INCREMENT/SOURCE'),
        type: inc.text('TYPE') ?? '',
        sizeMb: size !== undefined && UINT.test(size) ? Number(size) : undefined,
      };
    },
  );
  increments.sort((a, b) => a.inc - b.inc);
  if (increments.length === 0) {
    increments.push({ inc: 0, bid: bid(image.text('SOURCE'), 'SOURCE'), type: 'FULL', sizeMb: undefined });
  }
  const id = image.text('ID');
  return {
    imageId: id !== undefined && UINT.test(id) ? Number(id) : undefined,
    vmId: Number(vmText),
    backupJobId: bj === undefined || bj === '' ? undefined : Number(bj),
    format: image.text('FORMAT'),
    increments,
  };
}

/**
 * The chain that restores increment `incId` (every increment up to it, as OpenNebula's
 * chain_up_to), or the whole chain when `incId` is undefined or -1. An id the image does not
 * have is NOT_FOUND, naming the ids it has.
 */
export function chainUpTo(image: BackupImage, incId: number | undefined, owner: string): BackupIncrement[] {
  if (incId === undefined || incId < 0) return image.increments;
  if (!image.increments.some((i) => i.inc === incId)) {
    throw new StorageError(
      'NOT_FOUND',
      `${owner}: backup has no increment ${incId} (it has ${image.increments.map((i) => i.inc).join(', ')})`,
    );
  }
  return image.increments.filter((i) => i.inc <= incId);
}
