// Builders for the XML documents the fake oned serves. They write what oned's serialisers write
// (VirtualMachine::to_xml_extended, History::to_xml, Datastore::to_xml, Image::to_xml): plain text
// for the object's own fields, and every template value inside CDATA, as oned's Template::to_xml does.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../../common/src/files/atomic-file.js';
import { cdataAttrs, el, sortedAttrs, textAttrs, type Attrs } from './xml-text.js';

/** oned's default DATASTORE_LOCATION, with the double slash oned really writes into BASE_PATH. */
export const DATASTORE_LOCATION = '/var/lib/one//datastores';
/** STATE ACTIVE / LCM_STATE RUNNING: the state most driver calls see. */
const DEFAULT_STATE = 3;
const DEFAULT_LCM_STATE = 3;
/** Image STATE READY (1) and USED (2); a DISK's IMAGE_STATE is the image's state. */
const IMAGE_STATE_READY = 1;
const IMAGE_STATE_USED = 2;
const DEFAULT_DISK_SIZE_MB = 10240;
const ONEADMIN = 0;

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

export interface DatastoreFixture {
  id: number;
  name?: string;
  /** 0 image, 1 system, 2 file, 3 backup. */
  type?: number;
  dsMad?: string;
  tmMad: string;
  basePath?: string;
  template?: Attrs;
}

export interface ImageFixture {
  id: number;
  name?: string;
  source: string;
  /** Where the image was registered from (IMAGE/PATH); empty once oned has no use for it. */
  path?: string;
  format?: string;
  /** MiB. */
  size: number;
  persistent?: boolean;
  /** 0 OS, 1 CDROM, 2 DATABLOCK, ... */
  type?: number;
  datastoreId: number;
  datastore?: string;
  template?: Attrs;
  /** VMS/ID: the VMs using the image (a BACKUP image: the one VM it is a backup of). */
  vms?: readonly number[];
  /** BACKUP_INCREMENTS/INCREMENT of a BACKUP image (INCREMENT mode), oldest first. */
  backupIncrements?: readonly BackupIncrementFixture[];
}

/** One IMAGE/BACKUP_INCREMENTS/INCREMENT (share/doc/xsd/image.xsd). */
export interface BackupIncrementFixture {
  id: number;
  /** FULL or INCREMENT. */
  type: string;
  parentId?: number;
  /** The backup id the datastore's backup action printed. */
  source: string;
  /** MiB. */
  size?: number;
}

export interface HostFixture {
  id: number;
  name: string;
  state?: number;
  imMad?: string;
  vmMad?: string;
  template?: Attrs;
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

export function datastoreXml(ds: DatastoreFixture): string {
  const type = ds.type ?? 0;
  const template: Attrs = {
    DS_MAD: ds.dsMad ?? '',
    TM_MAD: ds.tmMad,
    TYPE: ['IMAGE_DS', 'SYSTEM_DS', 'FILE_DS', 'BACKUP_DS'][type] ?? 'IMAGE_DS',
    ...ds.template,
  };
  return el(
    'DATASTORE',
    textAttrs({
      ID: ds.id,
      UID: ONEADMIN,
      GID: ONEADMIN,
      UNAME: 'oneadmin',
      GNAME: 'oneadmin',
      NAME: ds.name ?? `ds${ds.id}`,
      DS_MAD: ds.dsMad ?? '',
      TM_MAD: ds.tmMad,
      BASE_PATH: ds.basePath ?? `${DATASTORE_LOCATION}/${ds.id}`,
      TYPE: type,
      DISK_TYPE: 0,
      STATE: 0,
    }) +
      el('CLUSTERS', el('ID', '0')) +
      textAttrs({ TOTAL_MB: 102400, FREE_MB: 51200, USED_MB: 51200 }) +
      el('IMAGES', '') +
      el('TEMPLATE', cdataAttrs(template)),
  );
}

export function imageXml(image: ImageFixture): string {
  return el(
    'IMAGE',
    textAttrs({
      ID: image.id,
      UID: ONEADMIN,
      GID: ONEADMIN,
      UNAME: 'oneadmin',
      GNAME: 'oneadmin',
      NAME: image.name ?? `image${image.id}`,
      TYPE: image.type ?? 0,
      DISK_TYPE: 0,
      PERSISTENT: image.persistent === true ? 1 : 0,
      REGTIME: 1700000000,
      SOURCE: image.source,
      PATH: image.path ?? '',
      FORMAT: image.format ?? 'qcow2',
      FS: '',
      SIZE: image.size,
      STATE: IMAGE_STATE_READY,
      RUNNING_VMS: 0,
      CLONING_OPS: 0,
      CLONING_ID: -1,
      TARGET_SNAPSHOT: -1,
      DATASTORE_ID: image.datastoreId,
      DATASTORE: image.datastore ?? 'default',
    }) +
      el('VMS', (image.vms ?? []).map((id) => el('ID', String(id))).join('')) +
      el('CLONES', '') +
      el('APP_CLONES', '') +
      el('TEMPLATE', cdataAttrs({ DEV_PREFIX: 'vd', ...image.template })) +
      el('SNAPSHOTS', textAttrs({ ALLOW_ORPHANS: 'FORMAT', CURRENT_BASE: -1, NEXT_SNAPSHOT: 0 })) +
      (image.backupIncrements
        ? el(
            'BACKUP_INCREMENTS',
            image.backupIncrements
              .map((inc) =>
                el(
                  'INCREMENT',
                  textAttrs({
                    DATE: 1700000000 + inc.id,
                    ID: inc.id,
                    PARENT_ID: inc.parentId ?? inc.id - 1,
                    SIZE: inc.size ?? 0,
                    SOURCE: inc.source,
                    TYPE: inc.type,
                  }),
                ),
              )
              .join(''),
          )
        : ''),
  );
}

export function hostXml(host: HostFixture): string {
  return el(
    'HOST',
    textAttrs({
      ID: host.id,
      NAME: host.name,
      STATE: host.state ?? 2,
      PREV_STATE: host.state ?? 2,
      IM_MAD: host.imMad ?? 'kvm',
      VM_MAD: host.vmMad ?? 'kvm',
      CLUSTER_ID: 0,
      CLUSTER: 'default',
    }) + el('TEMPLATE', cdataAttrs({ HYPERVISOR: 'kvm', ...host.template })),
  );
}

/**
 * What one_datastore.rb writes on an image datastore action's stdin: DS_DRIVER_ACTION_DATA (the
 * IMAGE and DATASTORE documents, as ImageManager::format_message builds it) in strict base64
 * (docs/opennebula/image-datastore.md#invocation).
 */
export function dsDriverActionData(image: ImageFixture, datastore: DatastoreFixture): string {
  return base64(el('DS_DRIVER_ACTION_DATA', imageXml(image) + datastoreXml(datastore)));
}

/**
 * STAT's DS_DRIVER_ACTION_DATA: oned measures a PATH before the image exists, so its IMAGE holds only
 * PATH (docs/opennebula/image-datastore.md#invocation).
 */
export function dsStatActionData(path: string, datastore: DatastoreFixture): string {
  return base64(
    el('DS_DRIVER_ACTION_DATA', el('IMAGE', textAttrs({ PATH: path })) + datastoreXml(datastore)),
  );
}

const base64 = (xml: string): string => Buffer.from(xml).toString('base64');

/** Writes <dir>/vm/<id>.xml (atomically, so the fake never serves a half-written file). */
export function writeVmXml(dir: string, vm: VmFixture): Promise<string> {
  return writeFixture(dir, 'vm', vm.id, vmXml(vm));
}

export function writeDatastoreXml(dir: string, ds: DatastoreFixture): Promise<string> {
  return writeFixture(dir, 'datastore', ds.id, datastoreXml(ds));
}

export function writeImageXml(dir: string, image: ImageFixture): Promise<string> {
  return writeFixture(dir, 'image', image.id, imageXml(image));
}

export function writeHostXml(dir: string, host: HostFixture): Promise<string> {
  return writeFixture(dir, 'host', host.id, hostXml(host));
}

async function writeFixture(dir: string, kind: string, id: number, xml: string): Promise<string> {
  await mkdir(join(dir, kind), { recursive: true });
  const path = join(dir, kind, `${id}.xml`);
  await writeFileAtomic(path, xml);
  return path;
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
