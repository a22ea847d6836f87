import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type {
  BackupCancelRequest,
  BackupCancelResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { backupDirs, removeAll } from '../backup/backup-dirs.js';
import { abortDomainJob } from '../backup/domain-job.js';
import { commitOverlays } from '../backup/overlays.js';
import { runningBackups } from '../backup/running-backups.js';
import { checkDomainName, isRunning } from '../libvirt/domain.js';
import { domainLockKey } from '../locks/path-locks.js';
import type { AgentContext, CallContext } from './context.js';
import { requirePath } from './validate.js';

/**
 * backup_cancel: aborts the BackupPrepare running for the VM directory (its tools are killed, its
 * libvirt job aborted, and it cleans up after itself), then makes sure nothing is left even when
 * no backup ran here (an agent restarted since): no job, no overlay, no backup/ or tmp/.
 */
export async function backupCancel(
  agent: AgentContext,
  req: BackupCancelRequest,
  call: CallContext,
): Promise<BackupCancelResponse> {
  const onedVmDir = requirePath(agent, 'BackupCancel', 'vm_dir', req.vmDir);
  const what = `backup cancel ${agent.name}:${onedVmDir}`;
  if (req.domain !== '') checkDomainName(req.domain, `${what}: domain`);
  const vmDir = await agent.roots.resolve(onedVmDir, 'vm_dir');
  const running = await runningBackups(agent).cancel(
    vmDir,
    new StorageError('TOOL_FAILED', `${what}: cancelled by backup_cancel`),
  );
  const opts = { uri: agent.libvirtUri, what };
  // Overlays are committed through the domain: a live action on it waits (domainLockKey).
  return agent.locks.withLock(
    req.domain !== '' ? [vmDir, domainLockKey(req.domain)] : [vmDir],
    what,
    async () => {
      try {
        let overlaysCommitted = 0;
        if (req.domain !== '' && (await isRunning(req.domain, opts))) {
          await abortDomainJob(req.domain, opts, call.log);
          overlaysCommitted = await commitOverlays(req.domain, backupDirs(vmDir).tmp, opts, call.log);
        }
        await removeAll(backupDirs(vmDir));
        call.log.info({ vmDir: onedVmDir, running, overlaysCommitted }, 'backup cancelled');
        return { running, overlaysCommitted };
      } catch (err) {
        throw asStorageError(err, 'backup cancel', `${agent.name}:${onedVmDir}`);
      }
    },
    call.signal,
  );
}
