import { asStorageError } from '../../../common/src/errors.js';
import type {
  BackupFinishRequest,
  BackupFinishResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { backupDirs, removeAll } from '../backup/backup-dirs.js';
import { commitOverlays } from '../backup/overlays.js';
import { checkDomainName } from '../libvirt/domain.js';
import { domainLockKey } from '../locks/path-locks.js';
import type { AgentContext, CallContext } from './context.js';
import { requirePath } from './validate.js';

/**
 * tm post_backup[_live]: the domain back on its own disks (overlays committed), backup/ and tmp/
 * removed. Nothing to do is a success, so a repeat, or a post after a failed pre, succeeds.
 */
export async function backupFinish(
  agent: AgentContext,
  req: BackupFinishRequest,
  call: CallContext,
): Promise<BackupFinishResponse> {
  const onedVmDir = requirePath(agent, 'BackupFinish', 'vm_dir', req.vmDir);
  const what = `backup finish ${agent.name}:${onedVmDir}`;
  if (req.domain !== '') checkDomainName(req.domain, `${what}: domain`);
  const vmDir = await agent.roots.resolve(onedVmDir, 'vm_dir');
  const dirs = backupDirs(vmDir);
  // Overlays are committed through the domain: a live action on it waits (domainLockKey).
  return agent.locks.withLock(
    req.live && req.domain !== '' ? [vmDir, domainLockKey(req.domain)] : [vmDir],
    what,
    async () => {
      try {
        const overlaysCommitted = req.live
          ? await commitOverlays(req.domain, dirs.tmp, { uri: agent.libvirtUri, what }, call.log)
          : 0;
        await removeAll(dirs);
        call.log.info({ vmDir: onedVmDir, failed: req.failed, overlaysCommitted }, 'backup finished');
        return { overlaysCommitted };
      } catch (err) {
        throw asStorageError(err, 'backup finish', `${agent.name}:${onedVmDir}`);
      }
    },
    call.signal,
  );
}
