// Builders for the datastore, image and host documents the fake oned serves (Datastore::to_xml,
// Image::to_xml, Host::to_xml), the DS_DRIVER_ACTION_DATA one_datastore.rb passes, and the writer of
// every fixture file. Plain text for the object's own fields, template values inside CDATA.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../../common/src/files/atomic-file.js';
import { cdataAttrs, el, textAttrs, type Attrs } from './xml-text.js';

/** oned's default DATASTORE_LOCATION, with the double slash oned really writes into BASE_PATH. */
export const DATASTORE_LOCATION = '/var/lib/one//datastores';
/** Image STATE READY (1). */
const IMAGE_STATE_READY = 1;
export const ONEADMIN = 0;

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

export function writeDatastoreXml(dir: string, ds: DatastoreFixture): Promise<string> {
  return writeFixture(dir, 'datastore', ds.id, datastoreXml(ds));
}

export function writeImageXml(dir: string, image: ImageFixture): Promise<string> {
  return writeFixture(dir, 'image', image.id, imageXml(image));
}

export function writeHostXml(dir: string, host: HostFixture): Promise<string> {
  return writeFixture(dir, 'host', host.id, hostXml(host));
}

export async function writeFixture(dir: string, kind: string, id: number, xml: string): Promise<string> {
  await mkdir(join(dir, kind), { recursive: true });
  const path = join(dir, kind, `${id}.xml`);
  await writeFileAtomic(path, xml);
  return path;
}
