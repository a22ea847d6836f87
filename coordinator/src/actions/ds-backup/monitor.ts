/**
 * The backup datastore's `monitor` (docs/backups.md#the-backup-datastore): the capacity of the
 * filesystem holding BASE_PATH on the backup server, as three lines of MiB (OpenNebula's rsync
 * prints them with an `M` suffix; oned reads plain numbers).
 */
import { defineAction } from '../define-action.js';
import { MONITOR_ARGS } from '../oned-signatures.js';
import { parseBackupActionData } from './backup-action-data.js';
import { backupServer } from './backup-server.js';

export const monitorBackupDs = defineAction(
  {
    signature: MONITOR_ARGS,
    does: "reports the backup server's capacity (df of BASE_PATH on the GRPC_BACKUP_HOST agent)",
  },
  async (ctx, { ds_id: dsId }) => {
    const data = parseBackupActionData(ctx.stdin, `datastore ${dsId}`);
    const server = backupServer(ctx, data.datastore);
    // BASE_PATH is made on first use: a datastore with no backup yet is still monitored.
    await ctx.ops.call(server.host, 'makeDir', { path: server.basePath });
    const r = await ctx.ops.call(server.host, 'monitorDatastore', {
      datastoreDir: server.basePath,
      vmDisks: false,
    });
    return { stdout: `USED_MB=${r.usedMb}\nTOTAL_MB=${r.totalMb}\nFREE_MB=${r.freeMb}\n` };
  },
);
