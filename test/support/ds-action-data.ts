// DS_DRIVER_ACTION_DATA as oned's ImageManager builds it for the image datastore actions: the IMAGE
// and DATASTORE documents (Image::to_xml, Datastore::to_xml, with the fields oned always writes),
// optional extras, base64-encoded as one_datastore.rb passes it on stdin.

/** A value: written as given (numbers as text); `null` leaves the element out. */
type Value = string | number | null;

export interface ImageXmlOptions {
  id?: Value;
  source?: Value;
  path?: Value;
  format?: Value;
  fs?: Value;
  size?: Value;
  /** 0 OS, 1 CDROM, 2 DATABLOCK, ... */
  type?: Value;
  persistent?: Value;
  targetSnapshot?: Value;
  /** IMAGE/TEMPLATE children (MD5, SHA1, FROM_APP_MD5, ...). */
  template?: Readonly<Record<string, string>>;
}

export interface DatastoreXmlOptions {
  id?: Value;
  /** 0 image, 1 system, 2 file, 3 backup. */
  type?: Value;
  tmMad?: Value;
  basePath?: Value;
  /** DATASTORE/TEMPLATE children (BRIDGE_LIST, SAFE_DIRS, RESTRICTED_DIRS, DRIVER, ...). */
  template?: Readonly<Record<string, string>>;
}

export interface ActionDataOptions {
  /** The IMAGE element's options, or the whole element as text (STAT's synthetic one: statImage). */
  image?: ImageXmlOptions | string;
  datastore?: DatastoreXmlOptions;
  /** SOURCE_BRIDGE_LIST (clone across datastores). */
  sourceBridgeList?: string;
  /** Raw XML appended inside the root. */
  extra?: string;
}

const el = (name: string, value: Value | undefined): string =>
  value === null || value === undefined ? '' : `<${name}>${String(value)}</${name}>`;
const cdata = (name: string, value: string): string => `<${name}><![CDATA[${value}]]></${name}>`;
const template = (values: Readonly<Record<string, string>> = {}): string =>
  `<TEMPLATE>${Object.entries(values)
    .map(([k, v]) => cdata(k, v))
    .join('')}</TEMPLATE>`;

/** The IMAGE element: image 7, an OS image, raw, 10 MiB, in datastore 1, unless told otherwise. */
export function imageXml(o: ImageXmlOptions = {}): string {
  return (
    '<IMAGE>' +
    el('ID', o.id === undefined ? 7 : o.id) +
    '<UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME><NAME>img</NAME>' +
    '<PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A></PERMISSIONS>' +
    el('TYPE', o.type === undefined ? 0 : o.type) +
    '<DISK_TYPE>0</DISK_TYPE>' +
    el('PERSISTENT', o.persistent === undefined ? 0 : o.persistent) +
    '<REGTIME>1700000000</REGTIME><MODTIME>0</MODTIME>' +
    (o.source === null ? '' : cdata('SOURCE', String(o.source ?? ''))) +
    (o.path === null ? '' : cdata('PATH', String(o.path ?? ''))) +
    (o.format === null ? '' : cdata('FORMAT', String(o.format ?? 'raw'))) +
    (o.fs === null ? '' : cdata('FS', String(o.fs ?? ''))) +
    el('SIZE', o.size === undefined ? 10 : o.size) +
    '<STATE>4</STATE><PREV_STATE>4</PREV_STATE><RUNNING_VMS>0</RUNNING_VMS>' +
    '<CLONING_OPS>0</CLONING_OPS><CLONING_ID>-1</CLONING_ID>' +
    el('TARGET_SNAPSHOT', o.targetSnapshot === undefined ? -1 : o.targetSnapshot) +
    '<DATASTORE_ID>1</DATASTORE_ID><DATASTORE>default</DATASTORE><VMS/><CLONES/><APP_CLONES/>' +
    template({ DEV_PREFIX: 'vd', ...o.template }) +
    '<SNAPSHOTS><ALLOW_ORPHANS>NO</ALLOW_ORPHANS><CURRENT_BASE>-1</CURRENT_BASE><NEXT_SNAPSHOT>0</NEXT_SNAPSHOT></SNAPSHOTS>' +
    '</IMAGE>'
  );
}

/** STAT's synthetic IMAGE: only PATH and, when given, SIZE (ImageManager::stat_image). */
export function statImage(path: string, size?: number): string {
  return `<IMAGE>${cdata('PATH', path)}${size === undefined ? '' : el('SIZE', size)}</IMAGE>`;
}

/** The DATASTORE element: image datastore 1 of TM `grpc`, BASE_PATH as oned writes it (with `//`). */
export function datastoreXml(o: DatastoreXmlOptions = {}): string {
  const id = o.id === undefined ? 1 : o.id;
  return (
    '<DATASTORE>' +
    el('ID', id) +
    '<UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME><NAME>default</NAME>' +
    '<DS_MAD><![CDATA[grpc]]></DS_MAD>' +
    (o.tmMad === null ? '' : cdata('TM_MAD', String(o.tmMad ?? 'grpc'))) +
    (o.basePath === null ? '' : cdata('BASE_PATH', String(o.basePath ?? `/var/lib/one//datastores/${id}`))) +
    el('TYPE', o.type === undefined ? 0 : o.type) +
    '<DISK_TYPE>0</DISK_TYPE><STATE>0</STATE><CLUSTERS><ID>0</ID></CLUSTERS>' +
    '<TOTAL_MB>1000</TOTAL_MB><FREE_MB>900</FREE_MB><USED_MB>100</USED_MB><IMAGES/>' +
    template({ DS_MAD: 'grpc', TM_MAD: 'grpc', ...o.template }) +
    '</DATASTORE>'
  );
}

/** The decoded DS_DRIVER_ACTION_DATA document. */
export function actionDataXml(o: ActionDataOptions = {}): string {
  const image = typeof o.image === 'string' ? o.image : imageXml(o.image);
  return (
    '<DS_DRIVER_ACTION_DATA>' +
    image +
    datastoreXml(o.datastore) +
    (o.sourceBridgeList === undefined ? '' : cdata('SOURCE_BRIDGE_LIST', o.sourceBridgeList)) +
    (o.extra ?? '') +
    '</DS_DRIVER_ACTION_DATA>'
  );
}

/** What one_datastore.rb writes on the action's stdin: the document in strict base64. */
export function actionData(o: ActionDataOptions = {}): string {
  return Buffer.from(actionDataXml(o)).toString('base64');
}
