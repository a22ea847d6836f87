import { StorageError } from '../../../../common/src/errors.js';
import { ImageFormat, type ImportImageRequest } from '../../../../proto/gen/onestorage/agent/v1/agent.js';
import { DatastoreType } from '../../oned/datastore-xml.js';
import { ImageType } from '../../oned/image-xml.js';
import { imageFormat } from '../disk-facts.js';
import { ACTION_DATA_ROOT } from './ds-driver-action.js';
import type { ImageActionData } from './image-action-data.js';

/** What an import does with the bytes besides fetching them: the ImportImage fields fs's cp decides. */
export type ImportOptions = Pick<
  ImportImageRequest,
  'md5' | 'sha1' | 'noDecompress' | 'limitBytesPerSecond' | 'convertTo' | 'sparse' | 'plainFile'
>;

const MD5 = /^[0-9a-f]{32}$/i;
const SHA1 = /^[0-9a-f]{40}$/i;

/**
 * fs cp's preparation (docs/image-datastore.md#cp): a file datastore (DATASTORE/TYPE 2) stores
 * plain files and does not decompress unless NO_DECOMPRESS says otherwise; CONVERT (default yes)
 * does nothing for a CD-ROM or in a file datastore, and converts to DRIVER only when it is raw or
 * qcow2; holes are dug unless SPARSE=no; the bandwidth limit applies. IMAGE/TEMPLATE MD5 and SHA1
 * are both checked (fs checks only the last given), and so is FROM_APP_MD5 (the marketplace app's,
 * which fs ignores); MD5 and FROM_APP_MD5 that disagree are refused before anything is fetched.
 */
export function importOptions(data: ImageActionData): ImportOptions {
  const { image, datastore: ds } = data;
  const fileDatastore = ds.type === DatastoreType.File;
  const convert = (ds.convert ?? true) && image.type !== ImageType.Cdrom && !fileDatastore;
  const driver = ds.driver?.toLowerCase();
  const md5 = digest(data, 'IMAGE/TEMPLATE/MD5', image.md5, MD5);
  const appMd5 = digest(data, 'IMAGE/TEMPLATE/FROM_APP_MD5', image.fromAppMd5, MD5);
  if (md5 !== '' && appMd5 !== '' && md5 !== appMd5) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${data.owner}: IMAGE/TEMPLATE/MD5 ${md5} and FROM_APP_MD5 ${appMd5} (the marketplace app's) disagree`,
    );
  }
  return {
    md5: md5 || appMd5,
    sha1: digest(data, 'IMAGE/TEMPLATE/SHA1', image.sha1, SHA1),
    noDecompress: ds.noDecompress ?? fileDatastore,
    limitBytesPerSecond: ds.limitBytesPerSecond,
    convertTo:
      convert && (driver === 'raw' || driver === 'qcow2')
        ? imageFormat(driver)
        : ImageFormat.IMAGE_FORMAT_UNSPECIFIED,
    sparse: ds.sparse,
    plainFile: fileDatastore,
  };
}

/** A hex digest, lower-cased; '' when unset. */
function digest(data: ImageActionData, xpath: string, value: string | undefined, shape: RegExp): string {
  if (value === undefined) return '';
  if (!shape.test(value)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${data.owner}: /${ACTION_DATA_ROOT}/${xpath} ${JSON.stringify(value.slice(0, 60))} is not a hex ${shape === MD5 ? 'MD5' : 'SHA-1'} digest`,
    );
  }
  return value.toLowerCase();
}
