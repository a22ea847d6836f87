/**
 * Where a backup directory may be (docs/backups.md#repository): `<BASE_PATH>/<vmid>/<backup_id>`,
 * inside the agent's roots. The shape is checked before any file is touched, so that ListBackup
 * and RemoveBackups can only ever see or remove a backup directory, never a datastore, a VM's
 * directory or a root.
 */
import { dirname } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import type { AgentContext } from '../rpc/context.js';
import { requirePath } from '../rpc/validate.js';

/** A backup id: ours (12 hex), or OpenNebula rsync's (6 hex); as common/src/backups/backup-url.ts. */
export const BACKUP_ID = /^[0-9a-f]{6,32}$/;
const VM_ID = /^(0|[1-9]\d{0,9})$/;

export interface BackupDir {
  /** oned's view, normalized. */
  path: string;
  /** This host's path for it (confined; the last component not followed). */
  local: string;
  /** The `<vmid>` directory holding it, this host's path. */
  vmDir: string;
  vmId: number;
  backupId: string;
}

/** Checks and resolves one backup directory path; `field` names it in errors. */
export async function resolveBackupDir(
  agent: AgentContext,
  method: string,
  field: string,
  raw: string,
): Promise<BackupDir> {
  const path = requirePath(agent, method, field, raw);
  const parts = path.split('/');
  const backupId = parts[parts.length - 1] ?? '';
  const vm = parts[parts.length - 2] ?? '';
  if (parts.length < 4 || !BACKUP_ID.test(backupId) || !VM_ID.test(vm)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${method} on ${agent.name}: ${field} ${path} is not <base path>/<vm id>/<backup id> (a backup id is 6 to 32 lower-case hex digits)`,
    );
  }
  const local = await agent.roots.resolve(path, field);
  const vmDir = dirname(local);
  if (await agent.roots.isRoot(local)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${method} on ${agent.name}: ${field} ${path} is a datastore root`,
    );
  }
  return { path, local, vmDir, vmId: Number(vm), backupId };
}
