import { VmDisk } from './vm-disk.js';
import { parseXmlRoot, yesNoValue, type XmlElement } from './xml-element.js';

/** One /VM/HISTORY_RECORDS/HISTORY: where the VM was (or is) placed. */
export interface VmHistory {
  seq: number;
  hostname: string;
  hostId: number | undefined;
  /** The system datastore of this placement. */
  dsId: number;
  /** The system datastore's TM driver. */
  tmMad: string;
  vmMad: string;
  /** oned's VMAction number of the operation that closed this record (0 = none). */
  action: number | undefined;
}

/** One /VM/SNAPSHOTS/SNAPSHOT: a disk snapshot (a file in disk.N.snap/ for the qcow2 layout). */
export interface VmSnapshot {
  id: number;
  /** The snapshot the disk currently runs on. */
  active: boolean;
  /** -1 for a snapshot taken from the base image. */
  parent: number;
  /** Virtual size in MiB. */
  size: number | undefined;
  name: string | undefined;
}

/** One /VM/SNAPSHOTS element: the snapshot tree of one disk. */
export interface VmDiskSnapshots {
  diskId: number;
  currentBase: number | undefined;
  nextSnapshot: number | undefined;
  snapshots: readonly VmSnapshot[];
}

/** The parts of oned's VM document the storage drivers read (docs/opennebula/driver-inputs.md#vm-xml). */
export class VmInfo {
  constructor(
    readonly id: number,
    readonly name: string,
    readonly state: number,
    readonly lcmState: number,
    /** The hypervisor's domain name (e.g. one-42); empty before the first deploy. */
    readonly deployId: string,
    readonly disks: readonly VmDisk[],
    /** DISK_ID of the context CD-ROM, when the VM has one. */
    readonly contextDiskId: number | undefined,
    /** /VM/TEMPLATE/TM_MAD_SYSTEM, set in mixed mode. */
    readonly tmMadSystem: string | undefined,
    /** Every /VM/TEMPLATE child that holds text (vector attributes such as DISK are left out). */
    readonly template: Readonly<Record<string, string>>,
    /** In SEQ order, oldest first. */
    readonly history: readonly VmHistory[],
    readonly snapshots: readonly VmDiskSnapshots[],
    /** /VM/BACKUPS/BACKUP_CONFIG children (MODE, KEEP_LAST, LAST_INCREMENT_ID, ...). */
    readonly backupConfig: Readonly<Record<string, string>>,
    /** /VM/BACKUPS/BACKUP_IDS/ID: the backup images of this VM. */
    readonly backupIds: readonly number[],
  ) {}

  disk(diskId: number): VmDisk | undefined {
    return this.disks.find((d) => d.diskId === diskId);
  }

  /** HISTORY[last()]: the current placement (host, system datastore, drivers). */
  get lastHistory(): VmHistory | undefined {
    return this.history[this.history.length - 1];
  }

  /** HISTORY[last()-1]: the placement before a migration (postmigrate, delete_prev). */
  get previousHistory(): VmHistory | undefined {
    return this.history[this.history.length - 2];
  }

  diskSnapshots(diskId: number): VmDiskSnapshots | undefined {
    return this.snapshots.find((s) => s.diskId === diskId);
  }
}

/**
 * Reads oned's <VM> document.
 * @param expectedId the id that was asked for: errors name it, and a document for another VM is refused.
 */
export function parseVm(xml: string, expectedId?: number): VmInfo {
  const owner = expectedId === undefined ? 'VM' : `VM ${expectedId}`;
  const root = parseXmlRoot(xml, 'VM', owner);
  const id = root.requireInt('ID');
  if (expectedId !== undefined && id !== expectedId) {
    throw new Error(`${owner} XML describes VM ${id}`);
  }
  const vm = root.withOwner(`VM ${id}`);
  const template = vm.child('TEMPLATE');
  const backups = vm.child('BACKUPS');
  return new VmInfo(
    id,
    vm.requireText('NAME'),
    vm.requireInt('STATE'),
    vm.requireInt('LCM_STATE'),
    vm.text('DEPLOY_ID') ?? '',
    (template?.children('DISK') ?? []).map((d) => new VmDisk(id, d.requireInt('DISK_ID'), d.record())),
    template?.child('CONTEXT')?.int('DISK_ID'),
    template?.text('TM_MAD_SYSTEM') || undefined,
    template?.record() ?? {},
    parseHistory(vm),
    vm.children('SNAPSHOTS').map(parseDiskSnapshots),
    backups?.child('BACKUP_CONFIG')?.record() ?? {},
    backups?.child('BACKUP_IDS')?.ints('ID') ?? [],
  );
}

function parseHistory(vm: XmlElement): VmHistory[] {
  const records = vm.child('HISTORY_RECORDS')?.children('HISTORY') ?? [];
  const history = records.map((h): VmHistory => ({
    seq: h.requireInt('SEQ'),
    hostname: h.requireText('HOSTNAME'),
    hostId: h.int('HID'),
    dsId: h.requireInt('DS_ID'),
    tmMad: h.requireText('TM_MAD'),
    vmMad: h.requireText('VM_MAD'),
    action: h.int('ACTION'),
  }));
  // oned writes them in SEQ order already; sorting keeps last() right even if a document does not.
  return history.sort((a, b) => a.seq - b.seq);
}

function parseDiskSnapshots(s: XmlElement): VmDiskSnapshots {
  return {
    diskId: s.requireInt('DISK_ID'),
    currentBase: s.int('CURRENT_BASE'),
    nextSnapshot: s.int('NEXT_SNAPSHOT'),
    snapshots: s.children('SNAPSHOT').map((snap): VmSnapshot => ({
      id: snap.requireInt('ID'),
      active: yesNoValue(snap.text('ACTIVE'), `${snap.owner} ${snap.path}/ACTIVE`) ?? false,
      parent: snap.int('PARENT') ?? -1,
      size: snap.int('SIZE'),
      name: snap.text('NAME'),
    })),
  };
}
