/**
 * The backup datastore's `backup_cancel` (docs/backups.md#the-backup-datastore): stops the VM's
 * upload in flight (its ReceiveBackup is cancelled and the backup server removes what it wrote),
 * then does what the TM's backup_cancel does (the agent aborts a running prebackup on the host).
 */
import { basename } from 'node:path';
import { parseXmlRoot } from '../../oned/xml-element.js';
import { backupCancel } from '../backup/backup-hooks.js';
import { defineAction } from '../define-action.js';
import { DS_BACKUP_CANCEL_ARGS } from '../oned-signatures.js';
import { cancelRunningBackup } from './running-backups.js';

const UINT = /^(0|[1-9]\d{0,9})$/;

export const backupCancelDatastore = defineAction(
  {
    signature: DS_BACKUP_CANCEL_ARGS,
    does: "stops the VM's upload in flight (the backup server removes what it wrote), then aborts the running pre_backup on the host",
  },
  async (ctx, { 'host:vm_dir': vmDir }) => {
    const vmId = vmIdOf(ctx.stdin, vmDir.path);
    if (vmId !== undefined && (await cancelRunningBackup(vmId)))
      ctx.info(`${ctx.action}: upload of VM ${vmId}'s backup stopped`);
    return backupCancel(ctx);
  },
);

/** The VM's id: /VM/ID of the XML on stdin, or the VM directory's name (`<system ds>/<vmid>`). */
function vmIdOf(stdin: Buffer, vmDir: string): number | undefined {
  const text = stdin.toString('utf8').trim();
  if (text !== '') {
    try {
      const id = parseXmlRoot(text, 'VM', 'VM').int('ID');
      if (id !== undefined) return id;
    } catch {
      // Not a VM document: the directory name still says which VM.
    }
  }
  const name = basename(vmDir);
  return UINT.test(name) ? Number(name) : undefined;
}
