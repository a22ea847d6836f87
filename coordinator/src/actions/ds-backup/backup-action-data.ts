/**
 * What the backup datastore's actions read on stdin (docs/backups.md#the-backup-datastore):
 * `<DS_DRIVER_ACTION_DATA>` with DATASTORE and, by action, VM and IMAGE. The VMM driver writes it
 * raw for backup and ls; oned writes it in base64 for rm, stat and monitor. Both are accepted
 * everywhere; anything else is one INVALID_ARGUMENT line starting with `stdin:`.
 */
import { StorageError, oneLine } from '../../../../common/src/errors.js';
import { parseXmlRoot, type XmlElement } from '../../oned/xml-element.js';
import { cleanPath } from '../host-path.js';
import { ACTION_DATA_ROOT, decodeActionData } from '../ds-image/ds-driver-action.js';

export interface BackupActionData {
  root: XmlElement;
  datastore: {
    id: number;
    /** BASE_PATH, repeated and trailing slashes removed ('' when absent). */
    basePath: string;
    template: Readonly<Record<string, string>>;
  };
  vm: XmlElement | undefined;
  image: XmlElement | undefined;
}

export function parseBackupActionData(stdin: Buffer, what: string): BackupActionData {
  const text = stdin.toString('utf8').trim();
  let root: XmlElement;
  if (text.startsWith('<')) {
    try {
      root = parseXmlRoot(text, ACTION_DATA_ROOT, what);
    } catch (err) {
      throw new StorageError('INVALID_ARGUMENT', `stdin: ${oneLine((err as Error).message)}`);
    }
  } else {
    root = decodeActionData(stdin, what);
  }
  const ds = root.child('DATASTORE');
  if (!ds) throw new StorageError('INVALID_ARGUMENT', `stdin: /${ACTION_DATA_ROOT}/DATASTORE is missing`);
  let id: number;
  try {
    id = ds.requireInt('ID');
  } catch (err) {
    throw new StorageError('INVALID_ARGUMENT', `stdin: ${oneLine((err as Error).message)}`);
  }
  const base = ds.text('BASE_PATH') ?? '';
  return {
    root,
    datastore: {
      id,
      basePath: base === '' ? '' : cleanPath(base),
      template: ds.child('TEMPLATE')?.record() ?? {},
    },
    vm: root.child('VM'),
    image: root.child('IMAGE'),
  };
}

/** The element `name` of the action data, or one line saying it is missing. */
export function need(data: BackupActionData, name: 'VM' | 'IMAGE'): XmlElement {
  const el = name === 'VM' ? data.vm : data.image;
  if (!el) throw new StorageError('INVALID_ARGUMENT', `stdin: /${ACTION_DATA_ROOT}/${name} is missing`);
  return el;
}
