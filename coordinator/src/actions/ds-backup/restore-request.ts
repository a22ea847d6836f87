/**
 * What oned's RESTORE sends a backup datastore (docs/backups.md#the-restore-action): DS_DRIVER_ACTION_DATA
 * with the BACKUP image, the backup datastore, DESTINATION_DS_ID and the user's choices in
 * TEMPLATE (USERNAME, NAME, NO_IP, NO_NIC, INCREMENT_ID, DISK_ID).
 */
import { StorageError } from '../../../../common/src/errors.js';
import { ACTION_DATA_ROOT, decodeActionData } from '../ds-image/ds-driver-action.js';
import { readBackupImage, type BackupImage } from './backup-image.js';

export interface RestoreRequest {
  /** "backup image 12": what errors call it. */
  owner: string;
  image: BackupImage;
  datastore: { id: number; basePath: string | undefined; template: Readonly<Record<string, string>> };
  destinationDsId: number;
  /** The user the restored objects belong to; undefined: the coordinator's own oned user. */
  username: string | undefined;
  /** The restored objects' base name; undefined: `<vmid>-<backup id>`. */
  name: string | undefined;
  noIp: boolean;
  noNic: boolean;
  /** The restore point; undefined (or -1 as sent): the last increment. */
  incrementId: number | undefined;
  /** Restore only this disk, as an image, and no VM template. */
  diskId: number | undefined;
}

const INT = /^-?\d{1,10}$/;
const UINT = /^(0|[1-9]\d{0,9})$/;
/** oned's object names: no control characters, and a sane length. */
const NAME = /^[^\p{Cc}]{1,128}$/u;

export function parseRestoreRequest(stdin: Buffer, requestId: string): RestoreRequest {
  const root = decodeActionData(stdin, `restore request ${requestId}`);
  const image = root.child('IMAGE');
  const id = image?.text('ID');
  const owner = id !== undefined && UINT.test(id) ? `backup image ${id}` : `restore request ${requestId}`;
  const bad = (xpath: string, why: string): StorageError =>
    new StorageError('INVALID_ARGUMENT', `${owner}: /${ACTION_DATA_ROOT}/${xpath} ${why}`);
  if (!image) throw bad('IMAGE', 'is missing');
  const ds = root.child('DATASTORE');
  const dsId = ds?.text('ID');
  if (!ds || dsId === undefined || !UINT.test(dsId)) throw bad('DATASTORE/ID', 'is missing or not an id');
  const dest = root.text('DESTINATION_DS_ID');
  if (dest === undefined || !UINT.test(dest)) {
    throw bad('DESTINATION_DS_ID', `is missing or not an id: ${JSON.stringify(dest ?? '')}`);
  }
  const t = root.child('TEMPLATE')?.record() ?? {};
  const optionalInt = (name: string, min: number): number | undefined => {
    const v = t[name];
    if (v === undefined || v === '') return undefined;
    if (!INT.test(v) || Number(v) < min) throw bad(`TEMPLATE/${name}`, `is not an id: ${JSON.stringify(v)}`);
    return Number(v) < 0 ? undefined : Number(v);
  };
  const text = (name: string): string | undefined => {
    const v = t[name]?.trim();
    if (v === undefined || v === '') return undefined;
    if (!NAME.test(v)) throw bad(`TEMPLATE/${name}`, 'is not a name oned accepts');
    return v;
  };
  return {
    owner,
    image: readBackupImage(image.withOwner(owner), owner),
    datastore: {
      id: Number(dsId),
      basePath: ds.text('BASE_PATH'),
      template: ds.child('TEMPLATE')?.record() ?? {},
    },
    destinationDsId: Number(dest),
    username: text('USERNAME'),
    name: text('NAME'),
    noIp: yes(t['NO_IP']),
    noNic: yes(t['NO_NIC']),
    incrementId: optionalInt('INCREMENT_ID', -1),
    diskId: optionalInt('DISK_ID', -1),
  };
}

function yes(v: string | undefined): boolean {
  return v?.trim().toUpperCase() === 'YES';
}
