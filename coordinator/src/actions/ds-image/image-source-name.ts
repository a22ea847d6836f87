import { createHash } from 'node:crypto';
import { StorageError } from '../../../../common/src/errors.js';
import { cleanPath } from '../host-path.js';

/**
 * The SOURCE of a new image: `<BASE_PATH>/<md5 hex of "<unix seconds>:<image id>\n">`, the name
 * OpenNebula's fs driver gives (docs/image-datastore.md#where-an-image-lives), so that its TM
 * drivers and tools see the same kind of name. BASE_PATH is oned's (`/var/lib/one//datastores/1`),
 * cleaned (`/var/lib/one/datastores/1`); it must be absolute. `nowMs` is the clock (tests fix it).
 */
export function imageSourceName(basePath: string, imageId: number, nowMs: number, owner: string): string {
  if (!basePath.startsWith('/')) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${owner}: BASE_PATH ${JSON.stringify(basePath)} is not an absolute path`,
    );
  }
  const seconds = Math.floor(nowMs / 1000);
  const hash = createHash('md5').update(`${seconds}:${imageId}\n`).digest('hex');
  const base = cleanPath(basePath);
  return `${base === '/' ? '' : base}/${hash}`;
}
