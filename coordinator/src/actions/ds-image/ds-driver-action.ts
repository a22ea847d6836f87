import { StorageError } from '../../../../common/src/errors.js';
import { parseXmlRoot } from '../../oned/xml-element.js';

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

const ROOT = 'DS_DRIVER_ACTION_DATA';

export function parseMonitorRequest(stdin: Buffer): MonitorRequest {
  const text = stdin.toString('utf8').trim();
  if (!/^[A-Za-z0-9+/=\s]+$/.test(text)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      'stdin: expected DS_DRIVER_ACTION_DATA in base64, got something else',
    );
  }
  let root;
  try {
    root = parseXmlRoot(Buffer.from(text, 'base64').toString('utf8'), ROOT, 'datastore monitor');
  } catch (err) {
    throw new StorageError('INVALID_ARGUMENT', `stdin: ${(err as Error).message}`);
  }
  const ds = root.child('DATASTORE');
  if (!ds) throw new StorageError('INVALID_ARGUMENT', `stdin: /${ROOT}/DATASTORE is missing`);
  const template = ds.child('TEMPLATE')?.record() ?? {};
  return {
    datastoreId: ds.requireInt('ID'),
    basePath: ds.text('BASE_PATH') ?? '',
    bridgeList: (template['BRIDGE_LIST'] ?? '').split(/\s+/).filter((h) => h !== ''),
    datastoreLocation: root.text('DATASTORE_LOCATION'),
    monitorVmDisks: root.text('MONITOR_VM_DISKS') === '1',
  };
}
