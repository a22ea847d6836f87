// Builders for the VM documents the fake oned serves. They write what oned's serialisers write
// (VirtualMachine::to_xml_extended, History::to_xml): plain text for the object's own fields, and
// every template value inside CDATA, as oned's Template::to_xml does. The datastore, image and host
// documents are in object-fixtures.ts (re-exported here, so one import serves a test).
import { cdataAttrs, el, sortedAttrs, textAttrs, type Attrs } from './xml-text.js';
import { DATASTORE_LOCATION, ONEADMIN, writeFixture } from './object-fixtures.js';

// The datastore, image and host documents, the action data and the fixture writers.
export * from './object-fixtures.js';

/** STATE ACTIVE / LCM_STATE RUNNING: the state most driver calls see. */
const DEFAULT_STATE = 3;
const DEFAULT_LCM_STATE = 3;
/** Image STATE USED (2): a DISK's IMAGE_STATE is its image's state. */
const IMAGE_STATE_USED = 2;
const DEFAULT_DISK_SIZE_MB = 10240;

export type { Attrs };

/** A DISK backed by an image (DATASTORE_ID/IMAGE_ID set) or volatile (no imageId). */
export interface DiskFixture {
  diskId: number;
  imageId?: number;
  /** Image datastore id; defaults to 1 (oned's "default" image datastore). */
  datastoreId?: number;
  datastore?: string;
  source?: string;
  format?: string;
  tmMad?: string;
  /** Mixed mode: the system datastore's TM driver. */
  tmMadSystem?: string;
  persistent?: boolean;
  /** MiB. */
  size?: number;
  originalSize?: number;
  target?: string;
  /** FILE for images (default), swap or fs for volatile disks (default fs). */
  type?: string;
  /** More attributes, or overrides of the defaults (e.g. SPARSE, QCOW2_STANDALONE). */
  attrs?: Attrs;
}

export interface HistoryFixture {
  hostname: string;
  hostId?: number;
  /** System datastore id. */
  dsId: number;
  /** The system datastore's TM driver. */
  tmMad: string;
  vmMad?: string;
  action?: number;
}

export interface SnapshotFixture {
  id: number;
  active?: boolean;
  parent?: number;
  size?: number;
  name?: string;
}

export interface VmFixture {
  id: number;
  name?: string;
  state?: number;
  lcmState?: number;
  deployId?: string;
  disks?: readonly DiskFixture[];
  /** DISK_ID of the context CD-ROM; omitted means no CONTEXT section. */
  contextDiskId?: number;
  tmMadSystem?: string;
  /** Oldest first; SEQ is the index. */
  history?: readonly HistoryFixture[];
  snapshots?: ReadonlyArray<{ diskId: number; snapshots: readonly SnapshotFixture[] }>;
  backupConfig?: Attrs;
  backupIds?: readonly number[];
  templateAttrs?: Attrs;
}

export function vmXml(vm: VmFixture): string {
  // oned keeps a vector attribute's values in a std::map, so a DISK's children come out sorted.
  const disks = (vm.disks ?? []).map((d, i) => el('DISK', cdataAttrs(sortedAttrs(diskAttrs(d, i)))));
  const context =
    vm.contextDiskId === undefined
      ? ''
      : el('CONTEXT', cdataAttrs({ DISK_ID: vm.contextDiskId, TARGET: 'hda', NETWORK: 'YES' }));
  const template = el(
    'TEMPLATE',
    [
      cdataAttrs({ CPU: 1, MEMORY: 1024, VMID: vm.id }),
      ...disks,
      context,
      cdataAttrs({ ...(vm.tmMadSystem === undefined ? {} : { TM_MAD_SYSTEM: vm.tmMadSystem }) }),
      cdataAttrs(vm.templateAttrs ?? {}),
    ].join(''),
  );
  const history = (vm.history ?? []).map((h, seq) =>
    el(
      'HISTORY',
      textAttrs({
        OID: vm.id,
        SEQ: seq,
        HOSTNAME: h.hostname,
        HID: h.hostId ?? seq,
        CID: 0,
        STIME: 1700000000 + seq,
        ETIME: 0,
        VM_MAD: h.vmMad ?? 'kvm',
        TM_MAD: h.tmMad,
        DS_ID: h.dsId,
        PLAN_ID: -1,
        ACTION_ID: -1,
        ACTION: h.action ?? 0,
        UID: -1,
        GID: -1,
        REQUEST_ID: -1,
      }),
    ),
  );
  const snapshots = (vm.snapshots ?? []).map((s) =>
    el(
      'SNAPSHOTS',
      cdataAttrs({
        ALLOW_ORPHANS: 'FORMAT',
        CURRENT_BASE: -1,
        DISK_ID: s.diskId,
        NEXT_SNAPSHOT: Math.max(-1, ...s.snapshots.map((x) => x.id)) + 1,
      }) +
        s.snapshots
          .map((x) =>
            el(
              'SNAPSHOT',
              cdataAttrs({
                ...(x.active === true ? { ACTIVE: 'YES' } : {}),
                DATE: 1700000000 + x.id,
                ID: x.id,
                NAME: x.name ?? `snap-${x.id}`,
                PARENT: x.parent ?? -1,
                SIZE: x.size ?? DEFAULT_DISK_SIZE_MB,
              }),
            ),
          )
          .join(''),
    ),
  );
  const backups = el(
    'BACKUPS',
    el('BACKUP_CONFIG', cdataAttrs(vm.backupConfig ?? {})) +
      el('BACKUP_IDS', (vm.backupIds ?? []).map((id) => el('ID', String(id))).join('')),
  );
  return el(
    'VM',
    [
      textAttrs({
        ID: vm.id,
        UID: ONEADMIN,
        GID: ONEADMIN,
        UNAME: 'oneadmin',
        GNAME: 'oneadmin',
        NAME: vm.name ?? `vm${vm.id}`,
        LAST_POLL: 0,
        STATE: vm.state ?? DEFAULT_STATE,
        LCM_STATE: vm.lcmState ?? DEFAULT_LCM_STATE,
        PREV_STATE: vm.state ?? DEFAULT_STATE,
        PREV_LCM_STATE: vm.lcmState ?? DEFAULT_LCM_STATE,
        RESCHED: 0,
        STIME: 1700000000,
        ETIME: 0,
        DEPLOY_ID: vm.deployId ?? `one-${vm.id}`,
      }),
      template,
      '<USER_TEMPLATE/>',
      el('HISTORY_RECORDS', history.join('')),
      ...snapshots,
      backups,
    ].join(''),
  );
}

/** Writes <dir>/vm/<id>.xml (atomically, so the fake never serves a half-written file). */
export function writeVmXml(dir: string, vm: VmFixture): Promise<string> {
  return writeFixture(dir, 'vm', vm.id, vmXml(vm));
}

/** The attributes oned puts on a DISK (docs/opennebula/driver-inputs.md#fields-the-tm-scripts-read, BackupRestore::DISK_LIST). */
function diskAttrs(d: DiskFixture, index: number): Attrs {
  const target = d.target ?? `vd${String.fromCharCode('a'.charCodeAt(0) + index)}`;
  const common = {
    DISK_ID: d.diskId,
    TARGET: target,
    ...(d.tmMadSystem === undefined ? {} : { TM_MAD_SYSTEM: d.tmMadSystem }),
  };
  if (d.imageId === undefined) {
    const type = d.type ?? 'fs';
    return {
      ...common,
      TYPE: type,
      SIZE: d.size ?? DEFAULT_DISK_SIZE_MB,
      ...(type === 'fs' ? { FORMAT: d.format ?? 'raw' } : {}),
      ...d.attrs,
    };
  }
  const persistent = d.persistent === true;
  const datastoreId = d.datastoreId ?? 1;
  const format = d.format ?? 'qcow2';
  const size = d.size ?? DEFAULT_DISK_SIZE_MB;
  return {
    ...common,
    ALLOW_ORPHANS: 'FORMAT',
    CLONE: persistent ? 'NO' : 'YES',
    CLONE_TARGET: 'SYSTEM',
    CLUSTER_ID: 0,
    DATASTORE: d.datastore ?? 'default',
    DATASTORE_ID: datastoreId,
    DEV_PREFIX: 'vd',
    DISK_SNAPSHOT_TOTAL_SIZE: 0,
    DISK_TYPE: 'FILE',
    DRIVER: format,
    FORMAT: format,
    IMAGE: `image${d.imageId}`,
    IMAGE_ID: d.imageId,
    IMAGE_STATE: IMAGE_STATE_USED,
    IMAGE_UID: ONEADMIN,
    IMAGE_UNAME: 'oneadmin',
    LN_TARGET: 'SYSTEM',
    ORIGINAL_SIZE: d.originalSize ?? size,
    ...(persistent ? { PERSISTENT: 'YES' } : {}),
    READONLY: 'NO',
    SAVE: persistent ? 'YES' : 'NO',
    SIZE: size,
    SOURCE: d.source ?? `${DATASTORE_LOCATION}/${datastoreId}/image${d.imageId}`,
    TM_MAD: d.tmMad ?? 'qcow2',
    TYPE: d.type ?? 'FILE',
    ...d.attrs,
  };
}
