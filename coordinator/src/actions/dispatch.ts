import type { ActionHandler } from './action-context.js';
import { backupCancel, postBackup, preBackup } from './backup/backup-hooks.js';
import { monitorImageDs } from './ds-image/monitor.js';
import { monitorSharedSystemDs } from './tm-shared/monitor.js';
import { cloneShared, lnShared } from './tm-shared/clone.js';
import { cpdsShared, mvShared, mvdsShared } from './tm-shared/in-place.js';
import { postmigrateShared, premigrateShared } from './tm-shared/migrate-hooks.js';
import { lnMixed, mvdsMixed } from './tm-shared/mixed.js';
import { cloneLocal } from './tm-local/clone.js';
import { contextLocal } from './tm-common/context.js';
import { cpdsLocal } from './tm-local/cpds.js';
import { deleteLocal } from './tm-common/delete.js';
import { mvLocal } from './tm-local/mv.js';
import { premigrateLocal, postmigrateLocal } from './tm-local/migrate-hooks.js';
import { mkimage, mkswap } from './tm-common/mkimage.js';
import { mvdsLocal } from './tm-local/mvds.js';
import { noOp } from './tm-common/no-op.js';
import { resizeDisk } from './tm-common/resize.js';
import { snapCreate, snapCreateLive, snapDelete, snapRevert } from './tm-common/snapshots.js';

/**
 * Backups (issue 4): the guide's hook names and OpenNebula's current ones, and backup_cancel, which
 * oned sends to the backup datastore driver (the shims install it under both).
 */
const BACKUP_HOOKS: Readonly<Record<string, ActionHandler>> = {
  pre_backup: preBackup,
  pre_backup_live: preBackup,
  prebackup: preBackup,
  prebackup_live: preBackup,
  post_backup: postBackup,
  post_backup_live: postBackup,
  postbackup: postBackup,
  postbackup_live: postBackup,
  backup_cancel: backupCancel,
};

/** Backup datastore driver `grpc_backup`: only backup_cancel so far. */
const DS_BACKUP: Readonly<Record<string, ActionHandler>> = {
  backup_cancel: backupCancel,
};

/** Local mode (TM `grpc`, replacing OpenNebula's ssh TM). */
const TM_LOCAL: Readonly<Record<string, ActionHandler>> = {
  clone: cloneLocal,
  ln: cloneLocal,
  mv: mvLocal,
  mvds: mvdsLocal,
  delete: deleteLocal,
  resize: resizeDisk,
  premigrate: premigrateLocal,
  postmigrate: postmigrateLocal,
  failmigrate: noOp,
  monitor: noOp,
  mkimage,
  mkswap,
  context: contextLocal,
  cpds: cpdsLocal,
  snap_create: snapCreate,
  snap_create_live: snapCreateLive,
  snap_revert: snapRevert,
  snap_delete: snapDelete,
  ...BACKUP_HOOKS,
};

/**
 * Shared mode (TM `grpc_qcow2`, replacing qcow2/shared). Its mixed-mode entries (`.grpc`, `.ssh`:
 * a shared image datastore serving VMs on a local system datastore) work on a local copy of the
 * disk as the local driver does, except ln and mvds, which carry a persistent image's snapshot chain
 * from and back to `<SOURCE>.snap`; the common actions (context, mkimage, mkswap, resize, delete,
 * failmigrate) are the same in both modes.
 */
const TM_SHARED: Readonly<Record<string, ActionHandler>> = {
  clone: cloneShared,
  ln: lnShared,
  mv: mvShared,
  mvds: mvdsShared,
  cpds: cpdsShared,
  delete: deleteLocal,
  resize: resizeDisk,
  mkimage,
  mkswap,
  context: contextLocal,
  snap_create: snapCreate,
  snap_create_live: snapCreateLive,
  snap_revert: snapRevert,
  snap_delete: snapDelete,
  premigrate: premigrateShared,
  postmigrate: postmigrateShared,
  failmigrate: noOp,
  monitor: monitorSharedSystemDs,
  ...mixedModeEntries(['grpc', 'ssh']),
  'ln.grpc': lnMixed,
  'ln.ssh': lnMixed,
  'mvds.grpc': mvdsMixed,
  'mvds.ssh': mvdsMixed,
  ...BACKUP_HOOKS,
};

/** `clone.grpc`, `clone.ssh`, ...: the local driver's handlers under the suffixed names. */
function mixedModeEntries(suffixes: readonly string[]): Record<string, ActionHandler> {
  const local = [
    'clone',
    'mv',
    'cpds',
    'snap_create',
    'snap_create_live',
    'snap_revert',
    'snap_delete',
  ] as const;
  return Object.fromEntries(
    suffixes.flatMap((sfx) => local.map((a) => [`${a}.${sfx}`, TM_LOCAL[a] as ActionHandler])),
  );
}

/** Image datastore driver `grpc`: only `monitor` so far; other DS actions answer UNSUPPORTED_ACTION. */
const DS_IMAGE: Readonly<Record<string, ActionHandler>> = {
  monitor: monitorImageDs,
};

/** `<kind>/<driver>` → action → handler. */
const DRIVERS: Readonly<Record<string, Readonly<Record<string, ActionHandler>>>> = {
  'tm/grpc': TM_LOCAL,
  'tm/grpc_qcow2': TM_SHARED,
  'datastore/grpc_backup': DS_BACKUP,
  'datastore/grpc': DS_IMAGE,
};

/**
 * Finds the handler for an action, following oned's own lookup rule for mixed-mode suffixes
 * (reference 1.3): `clone.ssh` is served by a specific `clone.ssh` handler when there is one,
 * otherwise by `clone`.
 */
export function findHandler(kind: string, driver: string, action: string): ActionHandler | undefined {
  const table = DRIVERS[`${kind}/${driver}`];
  if (!table) return undefined;
  const exact = table[action];
  if (exact) return exact;
  const dot = action.lastIndexOf('.');
  return dot > 0 ? table[action.slice(0, dot)] : undefined;
}

/** Every (kind, driver, action) with a handler, for docs and tests. */
export function supportedActions(): Array<{ kind: string; driver: string; action: string }> {
  return Object.entries(DRIVERS).flatMap(([key, table]) => {
    const [kind, driver] = key.split('/') as [string, string];
    return Object.keys(table).map((action) => ({ kind, driver, action }));
  });
}
