import { stat } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type {
  FlattenBackupsRequest,
  FlattenBackupsResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { backupDirSizeMb } from '../backup-repo/backup-dir-size.js';
import { type BackupDir, flattenDirs } from '../backup-repo/flatten-dirs.js';
import { type AgentContext, type CallContext, where } from './context.js';

/** `<base>/<vmid>/<backup_id>` (docs/backups.md#repository). */
const BACKUP_DIR = /^(\/.+\/(?:0|[1-9]\d{0,9}))\/([0-9a-f]{6,32})$/;

/**
 * FlattenBackups (increment_flatten with KEEP_LAST, docs/backups.md#increment_flatten): the backups
 * `backup_dirs` (oldest first, one VM) merged into the last one, disk by disk, its SHA256SUMS
 * rewritten, the older directories removed (backup-repo/flatten-dirs.ts). A repeat finishes an
 * interrupted flatten and succeeds after a finished one. Answers the last directory's size.
 */
export async function flattenBackups(
  agent: AgentContext,
  req: FlattenBackupsRequest,
  call: CallContext,
): Promise<FlattenBackupsResponse> {
  const action = 'flatten backups';
  const lastDir = req.backupDirs[req.backupDirs.length - 1] ?? '';
  const what = `${action} ${where(agent, lastDir)}`;
  if (req.backupDirs.length === 0)
    throw new StorageError('INVALID_ARGUMENT', `${what}: backup_dirs is empty`);
  let vmDir: string | undefined;
  const dirs: BackupDir[] = [];
  for (const dir of req.backupDirs) {
    const m = BACKUP_DIR.exec(dir);
    if (!m) throw new StorageError('INVALID_ARGUMENT', `${what}: ${dir} is not <base>/<vm id>/<backup id>`);
    vmDir ??= m[1];
    if (m[1] !== vmDir) throw new StorageError('INVALID_ARGUMENT', `${what}: ${dir} is not in ${vmDir}`);
    const bid = m[2] as string;
    if (dirs.some((d) => d.bid === bid))
      throw new StorageError('INVALID_ARGUMENT', `${what}: backup ${bid} is listed twice`);
    dirs.push({ dir, bid, local: await agent.roots.resolve(dir, 'backup_dirs') });
  }
  const last = dirs[dirs.length - 1] as BackupDir;
  return agent.locks.withLock(
    dirs.map((d) => d.local),
    what,
    async () => {
      const started = performance.now();
      try {
        if (dirs.length > 1) {
          await flattenDirs(dirs, {
            roots: agent.roots,
            host: agent.name,
            agentName: agent.name,
            signal: call.signal,
            what,
            progress: call.progress,
          });
        } else if (!(await stat(last.local).catch(() => undefined))?.isDirectory()) {
          throw new StorageError('NOT_FOUND', `backup directory ${where(agent, last.dir)} is missing`);
        }
        const sizeMb = await backupDirSizeMb(last.local);
        call.log.info(
          { dirs: req.backupDirs, sizeMb, ms: Math.round(performance.now() - started) },
          'backups flattened',
        );
        return { sizeMb };
      } catch (err) {
        throw asStorageError(err, action, where(agent, last.dir));
      }
    },
    call.signal,
  );
}
