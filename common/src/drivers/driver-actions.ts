// The one list of driver directories and action names: the shims are installed under them, the
// coordinator's dispatch tables cover them (a test checks both ways) and the docs list them. oned
// finds a driver's scripts by these exact names (docs/opennebula/driver-protocol.md#transfer-files and docs/opennebula/driver-protocol.md#datastore-driver), so a missing name is a missing
// action.

/** The kinds of remotes directory a shim lives in: `remotes/tm/...` or `remotes/datastore/...`. */
export type ShimKind = 'tm' | 'datastore';

/** TM driver for a system datastore on each host's local disk (replaces `ssh` / `local`). */
export const TM_DRIVER_LOCAL = 'grpc';
/** TM driver for a system datastore on a filesystem every host mounts (replaces `shared` / `qcow2`). */
export const TM_DRIVER_SHARED = 'grpc_qcow2';
export const TM_DRIVERS = [TM_DRIVER_LOCAL, TM_DRIVER_SHARED] as const;

/** Datastore driver for image datastores. */
export const DS_DRIVER_IMAGE = 'grpc';
/** Datastore driver for backup datastores. */
export const DS_DRIVER_BACKUP = 'grpc_backup';
export const DS_DRIVERS = [DS_DRIVER_IMAGE, DS_DRIVER_BACKUP] as const;

/**
 * Every TM action oned, the VMM driver or the TM's own helpers may run. Both spellings of the backup
 * hooks are kept (`pre_backup` and `prebackup`): different OpenNebula releases call different ones.
 */
export const TM_ACTIONS = [
  'clone',
  'ln',
  'mv',
  'mvds',
  'cpds',
  'delete',
  'mkimage',
  'mkswap',
  'context',
  'resize',
  'premigrate',
  'postmigrate',
  'failmigrate',
  'snap_create',
  'snap_create_live',
  'snap_delete',
  'snap_revert',
  'monitor',
  'monitor_ds',
  'restore',
  'pre_backup',
  'pre_backup_live',
  'post_backup',
  'post_backup_live',
  'prebackup',
  'prebackup_live',
  'postbackup',
  'postbackup_live',
  'backup_cancel',
] as const;

/**
 * TM actions that run on the hosts, not through the coordinator: their shim asks the local agent
 * (the host's monitoring probes run `tm/<driver>/monitor_ds`).
 */
export const HOST_SIDE_TM_ACTIONS: readonly string[] = ['monitor_ds'];

/**
 * The per-disk actions oned suffixes with `.<system TM name>` when a disk's image datastore and the
 * VM's system datastore use different TM drivers (docs/opennebula/driver-protocol.md#mixed-modes). oned falls back to the unsuffixed
 * script when the suffixed one is missing, but we install the suffixed names explicitly so the
 * coordinator sees which system TM the disk is going to.
 */
export const TM_MIXED_MODE_ACTIONS = [
  'clone',
  'ln',
  'mv',
  'mvds',
  'cpds',
  'delete',
  'resize',
  'snap_create',
  'snap_create_live',
  'snap_delete',
  'snap_revert',
] as const;

/**
 * Which system TM suffixes each of our TM drivers accepts: the shared driver is used with our local
 * driver or OpenNebula's ssh one as the system TM; the local driver with an ssh system datastore.
 */
export const TM_MIXED_MODE_SUFFIXES: Readonly<Record<(typeof TM_DRIVERS)[number], readonly string[]>> = {
  [TM_DRIVER_SHARED]: [TM_DRIVER_LOCAL, 'ssh'],
  [TM_DRIVER_LOCAL]: ['ssh'],
};

/** Every datastore action: oned's DS protocol (docs/opennebula/driver-protocol.md#datastore-driver) plus those the VMM and TM code run. */
export const DS_ACTIONS = [
  'cp',
  'clone',
  'mkfs',
  'stat',
  'rm',
  'monitor',
  'snap_delete',
  'snap_revert',
  'snap_flatten',
  'export',
  'restore',
  'increment_flatten',
  'ls',
  'backup',
  'backup_cancel',
] as const;

/** One installed shim: `remotes/<kind>/<driver>/<action>`. */
export interface ShimEntry {
  kind: ShimKind;
  driver: string;
  action: string;
}

/** Every shim to install, in a stable order (TM drivers first, then datastore drivers). */
export function shimEntries(): ShimEntry[] {
  const entries: ShimEntry[] = [];
  for (const driver of TM_DRIVERS) {
    for (const action of TM_ACTIONS) entries.push({ kind: 'tm', driver, action });
    for (const suffix of TM_MIXED_MODE_SUFFIXES[driver]) {
      for (const action of TM_MIXED_MODE_ACTIONS) {
        entries.push({ kind: 'tm', driver, action: `${action}.${suffix}` });
      }
    }
  }
  for (const driver of DS_DRIVERS) {
    for (const action of DS_ACTIONS) entries.push({ kind: 'datastore', driver, action });
  }
  return entries;
}
