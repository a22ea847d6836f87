import { asStorageError } from '../../../common/src/errors.js';
import type { ListBackupRequest, ListBackupResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { resolveBackupDir } from '../backup-repo/backup-dir.js';
import { listBackupDir } from '../backup-repo/list-backup.js';
import { type AgentContext, type CallContext, where } from './context.js';

const METHOD = 'list backup';

/** ListBackup (docs/backups.md#repository): read-only, so no lock; a backup appears whole or not at all. */
export async function listBackup(
  agent: AgentContext,
  req: ListBackupRequest,
  _call: CallContext,
): Promise<ListBackupResponse> {
  const dir = await resolveBackupDir(agent, METHOD, 'backup_dir', req.backupDir);
  const here = where(agent, dir.path);
  return listBackupDir(dir, here, req.withTpmState).catch((err: unknown) => {
    throw asStorageError(err, METHOD, here);
  });
}
