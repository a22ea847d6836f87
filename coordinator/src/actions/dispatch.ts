import {
  DS_ACTIONS,
  DS_DRIVER_BACKUP,
  DS_DRIVER_IMAGE,
  TM_ACTIONS,
  TM_DRIVER_LOCAL,
  TM_DRIVER_SHARED,
  TM_MIXED_MODE_ACTIONS,
  TM_MIXED_MODE_SUFFIXES,
  type ShimKind,
} from '../../../common/src/drivers/driver-actions.js';
import type { ActionHandler } from './action-context.js';
import { backupCancel, postBackup, preBackup } from './backup/backup-hooks.js';
import { incrementFlatten } from './ds-backup/increment-flatten.js';
import { backupToDatastore } from './ds-backup/backup.js';
import { backupCancelDatastore } from './ds-backup/backup-cancel.js';
import { lsBackup } from './ds-backup/ls.js';
import { monitorBackupDs } from './ds-backup/monitor.js';
import { rmBackup } from './ds-backup/rm.js';
import { statBackup } from './ds-backup/stat.js';
import { restoreBackup } from './ds-backup/restore.js';
import { cloneImage } from './ds-image/clone.js';
import { cpImage } from './ds-image/cp.js';
import { exportImage } from './ds-image/export.js';
import { snapDeleteImage, snapFlattenImage, snapRevertImage } from './ds-image/image-snapshots.js';
import { mkfsImage } from './ds-image/mkfs.js';
import { monitorImageDs } from './ds-image/monitor.js';
import { rmImage } from './ds-image/rm.js';
import { statImage } from './ds-image/stat.js';
import { contextLocal } from './tm-common/context.js';
import { deleteLocal } from './tm-common/delete.js';
import { mkimage, mkswap } from './tm-common/mkimage.js';
import { failmigrateNoOp, monitorNoOp } from './tm-common/no-op.js';
import { resizeDisk } from './tm-common/resize.js';
import { restoreVm } from './tm-common/restore.js';
import { snapCreate, snapCreateLive, snapDelete, snapRevert } from './tm-common/snapshots.js';
import { cloneLocal } from './tm-local/clone.js';
import { cpdsLocal } from './tm-local/cpds.js';
import { premigrateLocal, postmigrateLocal } from './tm-local/migrate-hooks.js';
import { mvLocal } from './tm-local/mv.js';
import { mvdsLocal } from './tm-local/mvds.js';
import { cloneShared, lnShared } from './tm-shared/clone.js';
import { cpdsShared, mvShared, mvdsShared } from './tm-shared/in-place.js';
import { postmigrateShared, premigrateShared } from './tm-shared/migrate-hooks.js';
import { lnMixed, mvdsMixed } from './tm-shared/mixed.js';
import { monitorSharedSystemDs } from './tm-shared/monitor.js';

/** An installed action the coordinator does not implement: it answers UNSUPPORTED_ACTION. */
export const NOT_IMPLEMENTED = Object.freeze({ notImplemented: 'not implemented by one-storage yet' });
/** An installed action whose shim asks the host's own agent: the coordinator never serves it. */
export const ON_THE_HOST = Object.freeze({
  notImplemented: "runs on the host: the shim asks the local agent (the host's monitoring probes call it)",
});

/** What the coordinator does for one installed action name. */
export type DriverEntry = ActionHandler | typeof NOT_IMPLEMENTED | typeof ON_THE_HOST;

type TmAction = (typeof TM_ACTIONS)[number];
type MixedAction = (typeof TM_MIXED_MODE_ACTIONS)[number];

/** The backup hooks: the guide's names and OpenNebula's current ones, each with its `_live` form. */
const BACKUP_HOOKS = {
  pre_backup: preBackup,
  pre_backup_live: preBackup,
  prebackup: preBackup,
  prebackup_live: preBackup,
  post_backup: postBackup,
  post_backup_live: postBackup,
  postbackup: postBackup,
  postbackup_live: postBackup,
  backup_cancel: backupCancel,
} as const;

/** The per-disk actions of local mode: also the shared driver's mixed-mode actions on a local disk. */
const TM_LOCAL_DISK: Readonly<Record<MixedAction, ActionHandler>> = {
  clone: cloneLocal,
  ln: cloneLocal,
  mv: mvLocal,
  mvds: mvdsLocal,
  cpds: cpdsLocal,
  delete: deleteLocal,
  resize: resizeDisk,
  snap_create: snapCreate,
  snap_create_live: snapCreateLive,
  snap_delete: snapDelete,
  snap_revert: snapRevert,
};

/** Local mode (TM `grpc`, replacing OpenNebula's ssh TM). */
const TM_LOCAL: Readonly<Record<TmAction, DriverEntry>> = {
  ...TM_LOCAL_DISK,
  mkimage,
  mkswap,
  context: contextLocal,
  premigrate: premigrateLocal,
  postmigrate: postmigrateLocal,
  failmigrate: failmigrateNoOp,
  monitor: monitorNoOp,
  monitor_ds: ON_THE_HOST,
  restore: restoreVm,
  ...BACKUP_HOOKS,
};

/**
 * Shared mode (TM `grpc_qcow2`, replacing qcow2/shared); the common actions (context, mkimage,
 * mkswap, resize, delete, snapshots, failmigrate) are the same in both modes.
 */
const TM_SHARED: Readonly<Record<TmAction, DriverEntry>> = {
  ...TM_LOCAL,
  clone: cloneShared,
  ln: lnShared,
  mv: mvShared,
  mvds: mvdsShared,
  cpds: cpdsShared,
  premigrate: premigrateShared,
  postmigrate: postmigrateShared,
  monitor: monitorSharedSystemDs,
};

/**
 * The shared driver's mixed-mode actions (`.grpc`, `.ssh`: a shared image datastore serving VMs on a
 * local system datastore) work on a local copy of the disk as the local driver does, except ln and
 * mvds, which carry a persistent image's snapshot chain from and back to `<SOURCE>.snap`.
 */
const TM_SHARED_MIXED: Readonly<Record<MixedAction, ActionHandler>> = {
  ...TM_LOCAL_DISK,
  ln: lnMixed,
  mvds: mvdsMixed,
};

/**
 * Image datastore driver (docs/image-datastore.md#actions); restore, increment_flatten, ls, backup
 * and backup_cancel belong to backup datastores.
 */
const DS_IMAGE: Readonly<Record<(typeof DS_ACTIONS)[number], DriverEntry>> = {
  ...notImplemented(DS_ACTIONS),
  cp: cpImage,
  clone: cloneImage,
  mkfs: mkfsImage,
  stat: statImage,
  rm: rmImage,
  monitor: monitorImageDs,
  snap_delete: snapDeleteImage,
  snap_revert: snapRevertImage,
  snap_flatten: snapFlattenImage,
  export: exportImage,
};

/** Backup datastore driver (docs/backups.md#the-backup-datastore). */
const DS_BACKUP: Readonly<Record<(typeof DS_ACTIONS)[number], DriverEntry>> = {
  ...notImplemented(DS_ACTIONS),
  increment_flatten: incrementFlatten,
  backup: backupToDatastore,
  backup_cancel: backupCancelDatastore,
  ls: lsBackup,
  rm: rmBackup,
  monitor: monitorBackupDs,
  stat: statBackup,
  restore: restoreBackup,
};

/** `<kind>/<driver>` → installed action name (mixed-mode names included) → entry. */
const DRIVERS: Readonly<Record<string, Readonly<Record<string, DriverEntry>>>> = {
  [`tm/${TM_DRIVER_LOCAL}`]: { ...TM_LOCAL, ...mixedMode(TM_DRIVER_LOCAL, TM_LOCAL_DISK) },
  [`tm/${TM_DRIVER_SHARED}`]: { ...TM_SHARED, ...mixedMode(TM_DRIVER_SHARED, TM_SHARED_MIXED) },
  [`datastore/${DS_DRIVER_BACKUP}`]: DS_BACKUP,
  [`datastore/${DS_DRIVER_IMAGE}`]: DS_IMAGE,
};

/** `clone.grpc`, `clone.ssh`, ...: the driver's mixed-mode names, one per accepted system TM. */
function mixedMode(
  driver: keyof typeof TM_MIXED_MODE_SUFFIXES,
  table: Readonly<Record<MixedAction, ActionHandler>>,
): Record<string, ActionHandler> {
  return Object.fromEntries(
    TM_MIXED_MODE_SUFFIXES[driver].flatMap((sfx) =>
      TM_MIXED_MODE_ACTIONS.map((a) => [`${a}.${sfx}`, table[a]]),
    ),
  );
}

function notImplemented<A extends string>(actions: readonly A[]): Record<A, DriverEntry> {
  return Object.fromEntries(actions.map((a) => [a, NOT_IMPLEMENTED])) as Record<A, DriverEntry>;
}

/**
 * What the coordinator does for an action, following oned's own lookup rule for mixed-mode
 * suffixes (docs/opennebula/driver-protocol.md#transfer-files): `clone.xyz` is served by a `clone.xyz` entry when there is one,
 * otherwise by `clone`. Undefined for a driver or action nobody installed.
 */
export function driverEntry(kind: string, driver: string, action: string): DriverEntry | undefined {
  const table = DRIVERS[`${kind}/${driver}`];
  if (!table) return undefined;
  const exact = table[action];
  if (exact) return exact;
  const dot = action.lastIndexOf('.');
  return dot > 0 ? table[action.slice(0, dot)] : undefined;
}

/** The handler for an action, or undefined when the coordinator does not serve it. */
export function findHandler(kind: string, driver: string, action: string): ActionHandler | undefined {
  const entry = driverEntry(kind, driver, action);
  return typeof entry === 'function' ? entry : undefined;
}

/** Every (kind, driver, action) the coordinator has an entry for, for docs and tests. */
export function driverEntries(): Array<{
  kind: ShimKind;
  driver: string;
  action: string;
  entry: DriverEntry;
}> {
  return Object.entries(DRIVERS).flatMap(([key, table]) => {
    const [kind, driver] = key.split('/') as [ShimKind, string];
    return Object.entries(table).map(([action, entry]) => ({ kind, driver, action, entry }));
  });
}
