import type {
  ReceiveBackupRequest,
  ReceiveBackupResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { resolveBackupDir } from '../backup-repo/backup-dir.js';
import { receiveBackupInto } from '../backup-repo/receive-backup.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requireField } from './validate.js';

const METHOD = 'receive backup';

/**
 * ReceiveBackup (docs/backups.md#repository): pulls a VM host's `backup/` into a new backup
 * directory, holding that directory's lock for the whole transfer (a second receive of the same
 * backup is LOCKED, then ALREADY_EXISTS).
 */
export async function receiveBackup(
  agent: AgentContext,
  req: ReceiveBackupRequest,
  call: CallContext,
): Promise<ReceiveBackupResponse> {
  const source = {
    ticket: requireField(agent, METHOD, 'ticket', req.ticket),
    dataAddress: requireField(agent, METHOD, 'data_address', req.dataAddress),
    sourceName: requireField(agent, METHOD, 'source_name', req.sourceName),
  };
  const dir = await resolveBackupDir(agent, METHOD, 'backup_dir', req.backupDir);
  return agent.locks.withLock(
    [dir.local],
    `${METHOD} into ${where(agent, dir.path)}`,
    () => receiveBackupInto(agent, dir, source, call),
    call.signal,
  );
}
