import { StorageError } from '../../../../common/src/errors.js';
import { parseXmlRoot, type XmlElement } from '../../oned/xml-element.js';

/** What a monitor action reads from DS_DRIVER_ACTION_DATA (base64 on stdin, docs/opennebula/driver-inputs.md#ds_driver_action_data). */
export interface MonitorRequest {
  datastoreId: number;
  /** /DS_DRIVER_ACTION_DATA/DATASTORE/BASE_PATH */
  basePath: string;
  /** TEMPLATE/BRIDGE_LIST split on blanks; empty: run on the front-end. */
  bridgeList: string[];
  /** /DS_DRIVER_ACTION_DATA/DATASTORE_LOCATION when oned sends it. */
  datastoreLocation: string | undefined;
  /** MONITOR_VM_DISKS=1: oned asks for the VMs' disk sizes this cycle (every DS_MONITOR_VM_DISK-th). */
  monitorVmDisks: boolean;
}

/** The root element oned (and the marketplace driver, for export) wraps every DS action's data in. */
export const ACTION_DATA_ROOT = 'DS_DRIVER_ACTION_DATA';
const BASE64 = /^[A-Za-z0-9+/=\s]+$/;

/**
 * Decodes DS_DRIVER_ACTION_DATA as oned sends it on stdin (base64, docs/opennebula/driver-protocol.md#datastore-driver)
 * and returns its root element. Anything else (not base64, not XML, another root) is one
 * INVALID_ARGUMENT line starting with `stdin:`; the input itself is never echoed whole.
 */
export function decodeActionData(stdin: Buffer, what: string): XmlElement {
  const text = stdin.toString('utf8').trim();
  if (text === '') {
    throw new StorageError(
      'INVALID_ARGUMENT',
      'stdin: expected DS_DRIVER_ACTION_DATA in base64, got nothing',
    );
  }
  if (!BASE64.test(text)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      'stdin: expected DS_DRIVER_ACTION_DATA in base64, got something else',
    );
  }
  try {
    return parseXmlRoot(Buffer.from(text, 'base64').toString('utf8'), ACTION_DATA_ROOT, what);
  } catch (err) {
    throw new StorageError('INVALID_ARGUMENT', `stdin: ${(err as Error).message}`);
  }
}

export function parseMonitorRequest(stdin: Buffer): MonitorRequest {
  const root = decodeActionData(stdin, 'datastore monitor');
  const ds = root.child('DATASTORE');
  if (!ds) throw new StorageError('INVALID_ARGUMENT', `stdin: /${ACTION_DATA_ROOT}/DATASTORE is missing`);
  const template = ds.child('TEMPLATE')?.record() ?? {};
  return {
    datastoreId: ds.requireInt('ID'),
    basePath: ds.text('BASE_PATH') ?? '',
    bridgeList: words(template['BRIDGE_LIST']),
    datastoreLocation: root.text('DATASTORE_LOCATION'),
    monitorVmDisks: root.text('MONITOR_VM_DISKS') === '1',
  };
}

/** A blank-separated list oned keeps in one attribute (BRIDGE_LIST, SAFE_DIRS, ...), as its words. */
export function words(value: string | undefined): string[] {
  return (value ?? '').split(/\s+/).filter((w) => w !== '');
}
