import type { ActionContext } from '../action-context.js';
import type { BackupServer } from '../ds-backup/backup-server.js';
import type { HostPath } from '../host-path.js';

/** The vTPM state's name in a backup directory (docs/backups.md#vtpm). */
const TPM_ARCHIVE = 'disk.tpm.0';

/**
 * The vTPM state of a whole-VM restore (docs/backups.md#vtpm): when the restore point holds
 * `disk.tpm.0`, the VM's host pulls it beside the VM directory and RestoreTpm replaces `tpm/`
 * with it. A backup without one leaves the VM's state as it is.
 */
export async function restoreTpmState(
  ctx: ActionContext,
  server: BackupServer,
  backupDir: string,
  vmDir: HostPath,
): Promise<void> {
  const path = `${backupDir}/${TPM_ARCHIVE}`;
  const st = await ctx.ops.call(server.host, 'stat', { path, follow: false });
  if (!st.exists) return;
  const archive = `${vmDir.path}/disk.tpm.backup`;
  const sending = await ctx.ops.call(server.host, 'openSend', {
    path,
    ttlSeconds: 0,
    receiverName: ctx.agents.get(vmDir.host).agent.certName,
  });
  await ctx.ops.call(vmDir.host, 'receive', {
    ticket: sending.ticket,
    dataAddress: sending.dataAddress,
    sourceName: ctx.agents.get(server.host).agent.certName,
    destination: archive,
    sparse: false,
  });
  const r = await ctx.ops.call(vmDir.host, 'restoreTpm', { archive, vmDir: vmDir.path });
  ctx.info(`${ctx.action}: vTPM state restored (${r.files} file(s))`);
}
