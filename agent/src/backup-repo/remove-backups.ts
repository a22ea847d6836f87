/**
 * RemoveBackups' work (docs/backups.md#repository): each backup directory goes whole (`rm -rf`,
 * never following a symlink), then its `<vmid>/` directory when that is left empty and is not a
 * root. A directory already gone counts as done: a repeat succeeds.
 */
import { lstat, rm } from 'node:fs/promises';
import { StorageError } from '../../../common/src/errors.js';
import { removeIfEmpty } from '../files/remove-if-empty.js';
import type { AgentContext } from '../rpc/context.js';
import type { BackupDir } from './backup-dir.js';

const RM_RETRIES = 10;
const RM_RETRY_DELAY_MS = 100;

/** Removes `dir`; true when it existed. `where` names it in errors. */
export async function removeBackupDir(agent: AgentContext, dir: BackupDir, where: string): Promise<boolean> {
  const st = await lstat(dir.local).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
  if (st && !st.isDirectory())
    throw new StorageError('BAD_LAYOUT', `remove backup ${where}: not a directory, left alone`);
  if (st)
    await rm(dir.local, {
      recursive: true,
      force: true,
      maxRetries: RM_RETRIES,
      retryDelay: RM_RETRY_DELAY_MS,
    });
  if (!(await agent.roots.isRoot(dir.vmDir))) await removeIfEmpty(dir.vmDir);
  return st !== undefined;
}
