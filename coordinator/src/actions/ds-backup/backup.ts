/**
 * The backup datastore's `backup` (docs/backups.md#the-backup-datastore): uploads the
 * `<vmdir>/backup/` prebackup built on the VM's host (or on BACKUP_CONFIG/LAST_BRIDGE) to the
 * backup server's agent over the data path, into `<BASE_PATH>/<vmid>/<backup id>/`, checksummed
 * end to end; the backup appears only once complete. Prints `<backup id> <size MiB> raw`.
 */
import { randomBytes } from 'node:crypto';
import { StorageError, oneLine } from '../../../../common/src/errors.js';
import { MIB } from '../../../../common/src/units.js';
import { defineAction } from '../define-action.js';
import { DS_BACKUP_ARGS } from '../oned-signatures.js';
import { parseBackupActionData, need } from './backup-action-data.js';
import { backupServer } from './backup-server.js';
import { withRunningBackup } from './running-backups.js';

/** 12 lower-case hex digits (docs/backups.md#repository). */
export function newBackupId(): string {
  return randomBytes(6).toString('hex');
}

export const backupToDatastore = defineAction(
  {
    signature: DS_BACKUP_ARGS,
    does: "uploads `<vm_dir>/backup/` from the VM's host (or LAST_BRIDGE) to the backup server's agent, checksummed; prints `<backup_id> <size_mb> raw`",
  },
  async (ctx, { 'host:vm_dir': vmDir, vm_id: vmId }) => {
    const data = parseBackupActionData(ctx.stdin, `backup of VM ${vmId}`);
    const vm = need(data, 'VM');
    const stdinVm = vm.int('ID');
    if (stdinVm !== vmId)
      throw new StorageError(
        'INVALID_ARGUMENT',
        `stdin: /DS_DRIVER_ACTION_DATA/VM is VM ${stdinVm ?? '?'}, not VM ${vmId}`,
      );
    const server = backupServer(ctx, data.datastore);
    const bridge = vm.child('BACKUPS')?.child('BACKUP_CONFIG')?.text('LAST_BRIDGE') ?? '';
    const sourceHost = bridge !== '' ? bridge : vmDir.host;
    let sourceName: string;
    try {
      sourceName = ctx.agents.get(sourceHost).agent.certName;
    } catch (err) {
      throw new StorageError('UNKNOWN_HOST', `VM ${vmId}: backup source ${oneLine((err as Error).message)}`);
    }
    const source = `${vmDir.path}/backup`;
    const backupId = newBackupId();
    const backupDir = `${server.basePath}/${vmId}/${backupId}`;
    const started = performance.now();
    const r = await withRunningBackup(vmId, async (signal) => {
      const ticket = await ctx.ops.call(sourceHost, 'openSend', {
        path: source,
        ttlSeconds: 0,
        receiverName: ctx.agents.get(server.host).agent.certName,
      });
      return ctx.ops.call(
        server.host,
        'receiveBackup',
        { ticket: ticket.ticket, dataAddress: ticket.dataAddress, sourceName, backupDir },
        { signal },
      );
    });
    const seconds = Math.max((performance.now() - started) / 1000, 0.001);
    ctx.info(
      `${ctx.action}: backup ${backupId} of VM ${vmId}: ${sourceHost}:${source} to ${server.host}:${backupDir}, ${r.files} files, ${(r.bytes / MIB).toFixed(1)} MiB of data in ${seconds.toFixed(2)} s (${(r.bytes / MIB / seconds).toFixed(0)} MiB/s), ${r.sizeMb} MiB stored`,
    );
    return { stdout: `${backupId} ${r.sizeMb} raw\n` };
  },
);
