import { describe, expect, it } from 'vitest';
import { backupCancel, postBackup, preBackup } from './backup/backup-hooks.js';
import { findHandler } from './dispatch.js';
import { backupToDatastore } from './ds-backup/backup.js';
import { backupCancelDatastore } from './ds-backup/backup-cancel.js';
import { lsBackup } from './ds-backup/ls.js';
import { monitorBackupDs } from './ds-backup/monitor.js';
import { cloneImage } from './ds-image/clone.js';
import { cpImage } from './ds-image/cp.js';
import { monitorImageDs } from './ds-image/monitor.js';
import { monitorSharedSystemDs } from './tm-shared/monitor.js';
import { cloneLocal } from './tm-local/clone.js';
import { deleteLocal } from './tm-common/delete.js';
import { snapCreateLive } from './tm-common/snapshots.js';
import { cloneShared } from './tm-shared/clone.js';
import { lnMixed } from './tm-shared/mixed.js';
import { failmigrateNoOp, monitorNoOp } from './tm-common/no-op.js';
import { restoreVm } from './tm-common/restore.js';

describe('findHandler', () => {
  it.each([
    ['tm', 'grpc', 'clone', cloneLocal],
    ['tm', 'grpc', 'ln', cloneLocal],
    ['tm', 'grpc', 'clone.ssh', cloneLocal],
    ['tm', 'grpc', 'delete.grpc_qcow2', deleteLocal],
    ['tm', 'grpc', 'snap_create_live.ssh', snapCreateLive],
    ['tm', 'grpc_qcow2', 'snap_create_live', snapCreateLive],
    ['tm', 'grpc_qcow2', 'snap_create_live.grpc', snapCreateLive],
    ['tm', 'grpc', 'restore', restoreVm],
    ['tm', 'grpc_qcow2', 'restore', restoreVm],
    ['tm', 'grpc', 'prebackup', preBackup],
    ['tm', 'grpc', 'pre_backup_live', preBackup],
    ['tm', 'grpc_qcow2', 'postbackup_live', postBackup],
    ['tm', 'grpc_qcow2', 'post_backup', postBackup],
    ['tm', 'grpc', 'backup_cancel', backupCancel],
    ['datastore', 'grpc_backup', 'backup_cancel', backupCancelDatastore],
    ['datastore', 'grpc_backup', 'backup', backupToDatastore],
    ['datastore', 'grpc_backup', 'ls', lsBackup],
    ['tm', 'grpc_qcow2', 'clone', cloneShared],
    ['tm', 'grpc_qcow2', 'clone.grpc', cloneLocal],
    ['tm', 'grpc_qcow2', 'clone.ssh', cloneLocal],
    ['tm', 'grpc_qcow2', 'delete.ssh', deleteLocal],
    ['tm', 'nosuch', 'clone', undefined],
    ['datastore', 'grpc', 'clone', cloneImage],
    ['datastore', 'grpc', 'cp', cpImage],
    ['datastore', 'grpc', 'restore', undefined],
    ['tm', 'grpc_qcow2', 'monitor', monitorSharedSystemDs],
    ['datastore', 'grpc', 'monitor', monitorImageDs],
    ['datastore', 'grpc_backup', 'monitor', monitorBackupDs],
    ['tm', 'grpc', 'failmigrate', failmigrateNoOp],
    ['tm', 'grpc', 'monitor', monitorNoOp],
    ['tm', 'grpc', 'monitor_ds', undefined],
    ['tm', 'grpc_qcow2', 'ln.ssh', lnMixed],
  ])('%s/%s/%s', (kind, driver, action, handler) => {
    expect(findHandler(kind, driver, action)).toBe(handler);
  });
});
