import { StorageError, oneLine } from '../../../../common/src/errors.js';
import { NO_OUTPUT } from '../action-context.js';
import { BackupMode } from '../../../../proto/gen/onestorage/agent/v1/agent.js';
import { diskFormat } from '../disk-facts.js';
import { freezeMode } from '../live-disk.js';
import { declareAction, defineAction } from '../define-action.js';
import { BACKUP_CANCEL_ARGS, BACKUP_HOOK_ARGS } from '../oned-signatures.js';
import { backupIds, parseBackupCall } from './backup-call.js';

/**
 * pre_backup / prebackup (powered off) and pre_backup_live / prebackup_live (running): the agent
 * on the VM's host writes `<vmdir>/backup/` (docs/opennebula/backups.md#flow); the backup datastore's `backup`
 * then uploads it. A new incremental chain started because the parent checkpoint or bitmap was
 * gone is said in an INFO line (it lands in the VM log).
 */
export const preBackup = declareAction(
  {
    signature: BACKUP_HOOK_ARGS,
    does: "writes the VM's backup to `<vm_dir>/backup/`: FULL, or INCREMENT with CBT (libvirt checkpoints when running, qcow2 bitmaps when off)",
  },
  async (ctx) => {
    const c = await parseBackupCall(ctx);
    const ids = backupIds(c.vm);
    const disks = c.diskIds.map((diskId) => {
      const disk = c.vm.disk(diskId);
      if (!disk) throw new StorageError('INVALID_ARGUMENT', `VM ${c.vmId} has no DISK ${diskId} to back up`);
      const target = disk.target ?? '';
      if (c.live && target === '') {
        throw new StorageError('INVALID_ARGUMENT', `VM ${c.vmId} DISK ${diskId} has no TARGET`);
      }
      return { diskId, target, format: diskFormat(disk, `VM ${c.vmId} DISK ${diskId}`) };
    });
    const r = await ctx.ops.call(c.vmDir.host, 'backupPrepare', {
      vmDir: c.vmDir.path,
      vmId: c.vmId,
      domain: c.deployId,
      live: c.live,
      disks,
      mode: ids.mode === 'FULL' ? BackupMode.BACKUP_MODE_FULL : BackupMode.BACKUP_MODE_INCREMENT,
      backupId: ids.backupId,
      parentId: ids.parentId,
      freeze: freezeMode(c.vm.backupConfig['FS_FREEZE']),
      vmXml: c.vmXml,
    });
    for (const d of r.disks) {
      if (d.newChainReason !== '') {
        ctx.info(
          `${ctx.action}: disk ${d.diskId}: ${d.newChainReason}; backup ${ids.backupId} is a full copy (new chain)`,
        );
      }
    }
    ctx.info(
      `${ctx.action}: ${ids.mode} backup ${ids.backupId} of VM ${c.vmId} ready in ${c.vmDir.path}/backup (${r.method})`,
    );
    return NO_OUTPUT;
  },
);

/**
 * post_backup[_live]: overlays committed back, backup/ and tmp/ removed. As OpenNebula's, it always
 * succeeds (oned runs it after a failed pre too, with BACKUP_RESULT=FAILURE); a failure is logged
 * and said in an INFO line.
 */
export const postBackup = declareAction(
  {
    signature: BACKUP_HOOK_ARGS,
    does: 'commits the overlays back and removes `backup/`; always succeeds, a failure is an INFO line',
  },
  async (ctx) => {
    try {
      const c = await parseBackupCall(ctx);
      const r = await ctx.ops.call(c.vmDir.host, 'backupFinish', {
        vmDir: c.vmDir.path,
        domain: c.live ? c.deployId : '',
        live: c.live,
        failed: c.failed,
      });
      if (r.overlaysCommitted > 0)
        ctx.info(`${ctx.action}: ${r.overlaysCommitted} overlay(s) committed back`);
    } catch (err) {
      const message = oneLine(err instanceof Error ? err.message : String(err));
      ctx.logger.error(
        { action: ctx.action, args: ctx.args, err: message },
        'post backup failed (ignored, as oned expects)',
      );
      ctx.info(`${ctx.action}: cleanup failed: ${message}`);
    }
    return NO_OUTPUT;
  },
);

/**
 * backup_cancel `<host>:<vm_dir> <deploy_id>` (the backup datastore's action, and the TM name the
 * shims also install): the running pre_backup on that host is aborted, the VM left on its own disks.
 */
export const backupCancel = defineAction(
  {
    signature: BACKUP_CANCEL_ARGS,
    does: 'aborts the running pre_backup on that host, the VM left on its own disks',
  },
  async (ctx, { 'host:vm_dir': vmDir, deploy_id: domain }) => {
    const r = await ctx.ops.call(vmDir.host, 'backupCancel', { vmDir: vmDir.path, domain });
    ctx.info(
      `${ctx.action}: ${r.running ? 'backup aborted' : 'no backup was running'} on ${vmDir.host}:${vmDir.path}`,
    );
    return NO_OUTPUT;
  },
);
