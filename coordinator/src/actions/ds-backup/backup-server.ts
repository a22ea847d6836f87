/**
 * Which host keeps a `grpc_backup` datastore's backups (docs/backups.md#the-backup-datastore): the
 * OpenNebula host named by the datastore template's GRPC_BACKUP_HOST, whose agent holds BASE_PATH
 * among its roots. The coordinator must have an agent configured for it (UNKNOWN_HOST otherwise).
 */
import { StorageError } from '../../../../common/src/errors.js';
import type { ActionContext } from '../action-context.js';
import { DatastoreType, parseDatastore } from '../../oned/datastore-xml.js';
import { cleanPath } from '../host-path.js';

/** The datastore template attribute naming the backup server (DS_MAD_CONF REQUIRED_ATTRS). */
export const BACKUP_HOST_ATTR = 'GRPC_BACKUP_HOST';
/** A host name as oned takes it: no blanks, slashes or shell characters. */
const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

export interface BackupServer {
  dsId: number;
  /** The agent's host name (canonical, as the coordinator's agents config names it). */
  host: string;
  /** The datastore's BASE_PATH (oned's view), repeated and trailing slashes removed. */
  basePath: string;
}

/**
 * The backup server of a datastore, from its id, BASE_PATH and template as oned gives them (in
 * DS_DRIVER_ACTION_DATA or from its API). One line naming the datastore and the attribute when
 * it is missing or names a host the coordinator has no agent for.
 */
export function backupServer(
  ctx: ActionContext,
  ds: { id: number; basePath: string | undefined; template: Readonly<Record<string, string>> },
): BackupServer {
  const named = ds.template[BACKUP_HOST_ATTR]?.trim() ?? '';
  if (named === '') {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `datastore ${ds.id}: TEMPLATE/${BACKUP_HOST_ATTR} is missing: it names the host that keeps the backups`,
    );
  }
  if (!HOST_NAME.test(named)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `datastore ${ds.id}: TEMPLATE/${BACKUP_HOST_ATTR} is not a host name: ${JSON.stringify(named.slice(0, 60))}`,
    );
  }
  // As OpenNebula's arg_path: oned writes BASE_PATH with a double slash (/var/lib/one//datastores/100),
  // which the pseudo-URL grammar does not take and a prefix check would not match.
  const basePath = cleanPath(ds.basePath ?? '');
  if (!basePath.startsWith('/')) {
    throw new StorageError('INVALID_ARGUMENT', `datastore ${ds.id}: BASE_PATH is missing or not absolute`);
  }
  let host: string;
  try {
    host = ctx.agents.canonical(named);
    ctx.agents.get(host);
  } catch (err) {
    const e = err as StorageError;
    throw new StorageError(
      e.reason ?? 'UNKNOWN_HOST',
      `datastore ${ds.id}: ${BACKUP_HOST_ATTR} names ${e.message}`,
    );
  }
  return { dsId: ds.id, host, basePath };
}

/**
 * The backup server of datastore `dsId`, asked of oned (for a pseudo-URL, which carries only the
 * id). The datastore must be a backup datastore of this driver.
 */
export async function backupServerOf(
  ctx: ActionContext,
  dsId: number,
  driver: string,
): Promise<BackupServer> {
  const ds = parseDatastore(await ctx.oned.datastoreXml(dsId), dsId);
  if (ds.type !== DatastoreType.Backup || ds.dsMad !== driver) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `datastore ${dsId} is not a ${driver} backup datastore (TYPE ${ds.type}, DS_MAD ${JSON.stringify(ds.dsMad)})`,
    );
  }
  return backupServer(ctx, ds);
}
