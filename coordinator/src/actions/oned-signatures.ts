import { arg, optionalArg, signature } from './action-args.js';

// The arguments oned (and the VMM driver, for the backup hooks) sends each action we implement,
// declared once; the handlers of both TM drivers and of the mixed-mode names share them. Names are
// the ones the error messages use; usages are OpenNebula's own usage lines (docs/opennebula/driver-protocol.md#calls-from-the-vmm-driver and docs/opennebula/driver-protocol.md#datastore-driver).

const VM_ID = arg('vm_id', 'id');
const DS_ID = arg('ds_id', 'id');
const SYSTEM_DISK = 'host:remote_system_ds/disk.i';
/** The disk an action makes on the host. */
const DESTINATION = arg('destination', 'host-path', SYSTEM_DISK);
const SIZE_MB = arg('size_mb', 'size-mb');

/** clone, ln: the image SOURCE on the front-end (or its datastore) and the disk to make. */
export const CLONE_ARGS = signature([arg('SOURCE', 'host-path', 'fe:SOURCE'), DESTINATION, VM_ID, DS_ID]);

/** mv: a disk or VM directory from one host (or the front-end) to another. */
export const MV_ARGS = signature([
  arg('source', 'host-path', 'hostA:path'),
  arg('destination', 'host-path', 'hostB:path'),
  VM_ID,
  DS_ID,
]);

/** mvds: a persistent disk back to its image SOURCE (no host part). */
export const MVDS_ARGS = signature([
  arg('disk', 'host-path', SYSTEM_DISK),
  arg('SOURCE', 'path'),
  VM_ID,
  DS_ID,
]);

/** cpds: a disk, or one of its snapshots (-1: the current state), saved as a new image SOURCE. */
export const CPDS_ARGS = signature([
  arg('disk', 'disk-path', SYSTEM_DISK),
  arg('SOURCE', 'path'),
  arg('snapshot_id', 'id'),
  VM_ID,
  DS_ID,
]);

/** delete: a disk or the whole VM directory. */
export const DELETE_ARGS = signature([arg('path', 'host-path', 'host:path'), VM_ID, DS_ID]);

/** mkimage: a volatile disk of a size and format. */
export const MKIMAGE_ARGS = signature([SIZE_MB, arg('format', 'text'), DESTINATION, VM_ID, DS_ID]);

/** mkswap: a swap disk of a size. */
export const MKSWAP_ARGS = signature([SIZE_MB, DESTINATION, VM_ID, DS_ID]);

/** context: context.sh and the CONTEXT/FILES entries, then the disk to make. */
export const CONTEXT_ARGS = signature([
  arg('files', 'files', 'context.sh [file[:name] ...]'),
  DESTINATION,
  VM_ID,
  DS_ID,
]);

/** resize: the disk and its new size. */
export const RESIZE_ARGS = signature([arg('disk', 'host-path', SYSTEM_DISK), SIZE_MB, VM_ID, DS_ID]);

/** snap_create, snap_create_live, snap_revert, snap_delete. */
export const SNAPSHOT_ARGS = signature([
  arg('disk', 'disk-path', SYSTEM_DISK),
  arg('snapshot_id', 'id'),
  VM_ID,
  DS_ID,
]);

/**
 * premigrate, postmigrate, failmigrate; the VM XML in base64 on stdin. A sixth argument, the
 * calling TM's name, marks a nested call (docs/opennebula/tm-actions.md#migrate-hook-fan-out).
 */
export const MIGRATE_ARGS = signature(
  [
    arg('source_host', 'hostname'),
    arg('destination_host', 'hostname'),
    arg('remote_system_dir', 'path'),
    VM_ID,
    DS_ID,
    optionalArg('nested_from_tm', 'text'),
  ],
  'vm-xml-base64',
);

/** monitor (TM, of a system datastore; DS, of an image datastore): DS_DRIVER_ACTION_DATA on stdin. */
export const MONITOR_ARGS = signature([DS_ID], 'ds-driver-action-data-base64');

/**
 * The image datastore's cp, clone, mkfs, rm and snap_* (docs/image-datastore.md#actions): the image
 * id; DS_DRIVER_ACTION_DATA (IMAGE, DATASTORE) on stdin.
 */
export const DS_IMAGE_ARGS = signature([arg('image_id', 'id')], 'ds-driver-action-data-base64');

/** The image datastore's stat: the id of oned's waiting request (unused); the synthetic IMAGE on stdin. */
export const DS_STAT_ARGS = signature([arg('request_id', 'id')], 'ds-driver-action-data-base64');

/** The image datastore's export, run by the marketplace driver: the marketplace app id. */
export const DS_EXPORT_ARGS = signature([arg('app_id', 'id')], 'ds-driver-action-data-base64');

/**
 * pre_backup[_live] / prebackup[_live] / post...: OpenNebula's six arguments, or the storage guide's
 * five without the backup job id (docs/opennebula/known-bugs.md#backup-hooks); the VM XML on stdin.
 */
export const BACKUP_HOOK_ARGS = signature(
  [
    arg('host:vm_dir', 'host-path'),
    arg('disk_ids', 'disk-ids'),
    arg('deploy_id', 'text'),
    optionalArg('bj_id', 'text', 'bj_id|-'),
    VM_ID,
    DS_ID,
  ],
  'vm-xml',
);

/** backup_cancel: the VM directory on its host and the domain. */
export const BACKUP_CANCEL_ARGS = signature([arg('host:vm_dir', 'host-path'), arg('deploy_id', 'text')]);

/**
 * The backup datastore's backup (docs/backups.md#the-backup-datastore): the hooks' arguments (six,
 * or the guide's five), `<DS_DRIVER_ACTION_DATA>` with DATASTORE and VM on stdin, raw.
 */
export const DS_BACKUP_ARGS = signature(BACKUP_HOOK_ARGS.args, 'ds-driver-action-data');

/** The backup datastore's backup_cancel: as the TM's, with the VM XML on stdin. */
export const DS_BACKUP_CANCEL_ARGS = signature(BACKUP_CANCEL_ARGS.args, 'vm-xml');

/** The backup datastore's ls: `-i <increment id>` or nothing; VM, DATASTORE and IMAGE on stdin. */
export const DS_BACKUP_LS_ARGS = signature(
  [optionalArg('increment', 'text', '-i inc_id')],
  'ds-driver-action-data',
);

/**
 * restore (TM, oned's RESTORE; docs/backups.md#tm-restore): the VM directory on its host, the VM,
 * the backup image, the increment (-1: the last) and the disk (-1: every disk of the backup).
 */
export const RESTORE_ARGS = signature([
  arg('host:vm_dir', 'host-path'),
  VM_ID,
  arg('image_id', 'id'),
  arg('increment_id', 'id'),
  arg('disk_id', 'id'),
]);
