import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type {
  RemoveBackupsRequest,
  RemoveBackupsResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { type BackupDir, resolveBackupDir } from '../backup-repo/backup-dir.js';
import { removeBackupDir } from '../backup-repo/remove-backups.js';
import { type AgentContext, type CallContext, where } from './context.js';

const METHOD = 'remove backups';

/**
 * RemoveBackups (docs/backups.md#repository): every path is checked (shape, roots) before the
 * first is removed; each is removed under its lock, with its `<vmid>/` when left empty.
 */
export async function removeBackups(
  agent: AgentContext,
  req: RemoveBackupsRequest,
  call: CallContext,
): Promise<RemoveBackupsResponse> {
  if (req.backupDirs.length === 0)
    throw new StorageError('INVALID_ARGUMENT', `${METHOD} on ${agent.name}: backup_dirs is empty`);
  const dirs: BackupDir[] = [];
  for (const raw of req.backupDirs) dirs.push(await resolveBackupDir(agent, METHOD, 'backup_dirs', raw));
  let removed = 0;
  for (const dir of dirs) {
    const here = where(agent, dir.path);
    const existed = await agent.locks.withLock(
      [dir.local],
      `${METHOD} ${here}`,
      () =>
        removeBackupDir(agent, dir, here).catch((err: unknown) => {
          throw asStorageError(err, 'remove backup', here);
        }),
      call.signal,
    );
    if (existed) removed += 1;
  }
  call.log.info({ removed, asked: dirs.length }, 'backups removed');
  return { removed };
}
