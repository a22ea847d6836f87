import type { ActionContext } from '../action-context.js';
import type { BackupServer } from '../ds-backup/backup-server.js';
import type { HostPath } from '../host-path.js';

/** The vTPM state's name in a backup directory (docs/backups.md#vtpm). */
const TPM_ARCHIVE = 'disk.tpm.0';
const SUMS = 'SHA256SUMS';

/**
 * The vTPM state of a whole-VM restore (docs/backups.md#vtpm): when the restore point holds
 * `disk.tpm.0`, the VM's host pulls it and the directory's SHA256SUMS into the VM directory, and
 * RestoreTpm checks it and replaces `tpm/` with it. A backup without one leaves the VM's state.
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
  const sums = `${vmDir.path}/SHA256SUMS.backup`;
  try {
    await pull(ctx, server, path, vmDir.host, archive);
    await pull(ctx, server, `${backupDir}/${SUMS}`, vmDir.host, sums);
  } catch (err) {
    // RestoreTpm removes both; a failed pull leaves them to this call.
    for (const p of [archive, sums])
      await ctx.ops.callDetached(vmDir.host, 'delete', { path: p }).catch(() => undefined);
    throw err;
  }
  const r = await ctx.ops.call(vmDir.host, 'restoreTpm', { archive, sums, vmDir: vmDir.path });
  ctx.info(`${ctx.action}: vTPM state restored (${r.files} file(s))`);
}

/** One file of the backup server, pulled by `host` into `destination` over the data path. */
async function pull(
  ctx: ActionContext,
  server: BackupServer,
  path: string,
  host: string,
  destination: string,
): Promise<void> {
  const sending = await ctx.ops.call(server.host, 'openSend', {
    path,
    ttlSeconds: 0,
    receiverName: ctx.agents.get(host).agent.certName,
  });
  await ctx.ops.call(host, 'receive', {
    ticket: sending.ticket,
    dataAddress: sending.dataAddress,
    sourceName: ctx.agents.get(server.host).agent.certName,
    destination,
    sparse: false,
  });
}
