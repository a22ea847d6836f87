import { StorageError } from '../../../../common/src/errors.js';
import { shownUrl } from '../../../../common/src/shown-url.js';

/** What an IMAGE/PATH names: a URL the landing agent downloads, or a file on the front-end. */
export type ImportPath =
  | {
      kind: 'url';
      url: string;
      /** The URL without user, password or export token, for messages and logs. */ shown: string;
    }
  | { kind: 'local'; path: string; shown: string };

/** A URL scheme, `_` included: our backup pseudo-URL is `grpc_backup://`. */
const SCHEME = /^([A-Za-z][A-Za-z0-9+._-]*):\/\//;
const DOWNLOADED = new Set(['http', 'https']);
/** The backup datastore driver `grpc_backup` restores images from these (docs/image-datastore.md#cp). */
const OUR_BACKUPS = new Set(['grpc_backup']);
/** OpenNebula's backup datastores' pseudo-URLs (rsync, restic). */
const THEIR_BACKUPS = new Set(['rsync', 'rsync+rbd', 'restic', 'restic+rbd']);

/**
 * Sorts IMAGE/PATH (docs/image-datastore.md#cp): `http://` and `https://` are downloaded; an
 * absolute path is a file on the front-end; any other scheme (ssh://, s3://, lxd://, rbd://, the
 * backup pseudo-URLs, ...) is refused in one line naming it and what is supported, as is a
 * relative path.
 */
export function classifyImportPath(path: string, owner: string): ImportPath {
  const scheme = SCHEME.exec(path)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    if (!path.startsWith('/')) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `${owner}: PATH ${JSON.stringify(path)} is neither an absolute path nor an http(s) URL`,
      );
    }
    return { kind: 'local', path, shown: path };
  }
  if (DOWNLOADED.has(scheme)) {
    let url: URL;
    try {
      url = new URL(path);
    } catch {
      throw new StorageError('INVALID_ARGUMENT', `${owner}: PATH is not a valid ${scheme}:// URL`);
    }
    return { kind: 'url', url: path, shown: shownUrl(url) };
  }
  if (OUR_BACKUPS.has(scheme)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${owner}: PATH ${scheme}:// (an image from a grpc_backup datastore) is not supported yet: restoring from backups comes with the backup datastore driver`,
    );
  }
  const what = THEIR_BACKUPS.has(scheme)
    ? ` (OpenNebula's ${scheme.split('+')[0] ?? scheme} backup datastore)`
    : '';
  throw new StorageError(
    'INVALID_ARGUMENT',
    `${owner}: PATH scheme ${scheme}://${what} is not supported by the grpc image datastore: register from http://, https:// or a file on the front-end`,
  );
}
