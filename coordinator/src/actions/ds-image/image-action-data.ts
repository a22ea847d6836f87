import { StorageError } from '../../../../common/src/errors.js';
import type { XmlElement } from '../../oned/xml-element.js';
import { ACTION_DATA_ROOT, decodeActionData, words } from './ds-driver-action.js';
import { parseTransferRate } from './transfer-rate.js';

/** The parts of the IMAGE element the image datastore actions read (docs/image-datastore.md#actions). */
export interface ImageFields {
  id: number | undefined;
  source: string | undefined;
  /** What cp and stat register (a file or URL), or the source image's SOURCE for clone. */
  path: string | undefined;
  format: string | undefined;
  fs: string | undefined;
  /** MiB. */
  sizeMb: number | undefined;
  /** 0 OS, 1 CDROM, 2 DATABLOCK, ... (oned/image-xml.ts ImageType). */
  type: number | undefined;
  persistent: boolean;
  /** The snapshot the snap_* actions work on; -1 (unset) is kept as given. */
  targetSnapshot: number | undefined;
  md5: string | undefined;
  sha1: string | undefined;
  /** The MD5 a marketplace recorded for the app this image comes from. */
  fromAppMd5: string | undefined;
}

/** The parts of the DATASTORE element (and its TEMPLATE) the actions read. */
export interface DatastoreFields {
  id: number;
  /** 0 image, 1 system, 2 file, 3 backup (oned/datastore-xml.ts DatastoreType). */
  type: number | undefined;
  tmMad: string | undefined;
  basePath: string | undefined;
  bridgeList: string[];
  safeDirs: string[];
  restrictedDirs: string[];
  /** NO_DECOMPRESS: true for `yes` in any case, false for any other value, undefined when unset. */
  noDecompress: boolean | undefined;
  /** LIMIT_TRANSFER_BW in bytes per second; 0: unlimited. */
  limitBytesPerSecond: number;
  /** CONVERT: as NO_DECOMPRESS. */
  convert: boolean | undefined;
  driver: string | undefined;
  /** False only for SPARSE=no (any case). */
  sparse: boolean;
}

/** DS_DRIVER_ACTION_DATA of an image datastore action, read once. */
export interface ImageActionData {
  /** What errors call the request: "image 7", "stat request 12", "app 3". */
  owner: string;
  image: ImageFields;
  datastore: DatastoreFields;
  /** The source datastore's BRIDGE_LIST on a clone across datastores. */
  sourceBridgeList: string[];
}

/** oned writes the image's PERSISTENT flag as 0/1. */
const PERSISTENT_YES = '1';
/** Linux's PATH_MAX: a longer PATH, SOURCE or BASE_PATH is no file name (and no sane URL). */
export const MAX_PATH_CHARS = 4096;
const INTEGER = /^-?\d{1,15}$/;
const LONGEST_QUOTE = 60;

/**
 * Reads DS_DRIVER_ACTION_DATA (base64 on stdin) into the typed fields of docs/image-datastore.md#actions.
 * Empty elements count as absent, as OpenNebula's xpath.rb has it. A malformed value (an id that is
 * no integer, an over-long path, a LIMIT_TRANSFER_BW curl would refuse) is one INVALID_ARGUMENT
 * line naming its XPath; absent ones are left undefined for `need` to refuse where an action needs
 * them. With `imageId` (the argument oned passes), an IMAGE/ID naming another image is refused.
 */
export function parseImageActionData(
  stdin: Buffer,
  owner: string,
  opts: { imageId?: number } = {},
): ImageActionData {
  const root = decodeActionData(stdin, owner);
  const read = new Reader(owner);
  const image = root.child('IMAGE');
  const ds = root.child('DATASTORE');
  if (!image) throw read.missing('IMAGE');
  if (!ds) throw read.missing('DATASTORE');
  const imageTemplate = image.child('TEMPLATE');
  const dsTemplate = ds.child('TEMPLATE');
  const fields: ImageFields = {
    id: read.int(image, 'ID'),
    source: read.path(image, 'SOURCE'),
    path: read.path(image, 'PATH'),
    format: read.text(image, 'FORMAT'),
    fs: read.text(image, 'FS'),
    sizeMb: read.int(image, 'SIZE'),
    type: read.int(image, 'TYPE'),
    persistent: read.text(image, 'PERSISTENT') === PERSISTENT_YES,
    targetSnapshot: read.int(image, 'TARGET_SNAPSHOT'),
    md5: read.text(imageTemplate, 'MD5'),
    sha1: read.text(imageTemplate, 'SHA1'),
    fromAppMd5: read.text(imageTemplate, 'FROM_APP_MD5'),
  };
  if (opts.imageId !== undefined && fields.id !== undefined && fields.id !== opts.imageId) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${owner}: /${ACTION_DATA_ROOT}/IMAGE/ID is ${fields.id}, not the image ${opts.imageId} of the call`,
    );
  }
  const dsId = read.int(ds, 'ID');
  if (dsId === undefined) throw read.missing('DATASTORE/ID');
  const rate = read.text(dsTemplate, 'LIMIT_TRANSFER_BW');
  return {
    owner,
    image: fields,
    datastore: {
      id: dsId,
      type: read.int(ds, 'TYPE'),
      tmMad: read.text(ds, 'TM_MAD'),
      basePath: read.path(ds, 'BASE_PATH'),
      bridgeList: words(read.text(dsTemplate, 'BRIDGE_LIST')),
      safeDirs: words(read.text(dsTemplate, 'SAFE_DIRS')),
      restrictedDirs: words(read.text(dsTemplate, 'RESTRICTED_DIRS')),
      noDecompress: yes(read.text(dsTemplate, 'NO_DECOMPRESS')),
      limitBytesPerSecond: rate === undefined ? 0 : read.rate(dsTemplate, 'LIMIT_TRANSFER_BW', rate),
      convert: yes(read.text(dsTemplate, 'CONVERT')),
      driver: read.text(dsTemplate, 'DRIVER'),
      sparse: read.text(dsTemplate, 'SPARSE')?.toLowerCase() !== 'no',
    },
    sourceBridgeList: words(read.text(root, 'SOURCE_BRIDGE_LIST')),
  };
}

/**
 * A field an action cannot do without: its value, or one INVALID_ARGUMENT line naming its XPath
 * (`xpath` relative to the root, e.g. `IMAGE/SOURCE`).
 */
export function need<T>(data: ImageActionData, xpath: string, value: T | undefined): T {
  if (value === undefined) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${data.owner}: /${ACTION_DATA_ROOT}/${xpath} is missing or empty`,
    );
  }
  return value;
}

/** fs's test for these flags: the lower-cased value is `yes`. */
function yes(value: string | undefined): boolean | undefined {
  return value === undefined ? undefined : value.toLowerCase() === 'yes';
}

/** Reads values out of the document, turning what does not fit into one line naming the XPath. */
class Reader {
  constructor(private readonly owner: string) {}

  text(el: XmlElement | undefined, name: string): string | undefined {
    const value = el?.text(name);
    return value === '' ? undefined : value;
  }

  int(el: XmlElement, name: string): number | undefined {
    const value = this.text(el, name);
    if (value === undefined) return undefined;
    if (!INTEGER.test(value)) throw this.bad(el, name, `is not an integer: ${quote(value)}`);
    return Number(value);
  }

  path(el: XmlElement, name: string): string | undefined {
    const value = this.text(el, name);
    if (value !== undefined && value.length > MAX_PATH_CHARS) {
      throw this.bad(
        el,
        name,
        `is ${value.length} characters long, more than ${MAX_PATH_CHARS}: ${quote(value)}`,
      );
    }
    return value;
  }

  rate(el: XmlElement | undefined, name: string, value: string): number {
    try {
      return parseTransferRate(value);
    } catch (err) {
      throw this.bad(el, name, (err as Error).message);
    }
  }

  missing(xpath: string): StorageError {
    return new StorageError('INVALID_ARGUMENT', `${this.owner}: /${ACTION_DATA_ROOT}/${xpath} is missing`);
  }

  private bad(el: XmlElement | undefined, name: string, why: string): StorageError {
    return new StorageError('INVALID_ARGUMENT', `${this.owner}: ${el?.path ?? ''}/${name} ${why}`);
  }
}

function quote(value: string): string {
  return JSON.stringify(value.length > LONGEST_QUOTE ? `${value.slice(0, LONGEST_QUOTE)}...` : value);
}
