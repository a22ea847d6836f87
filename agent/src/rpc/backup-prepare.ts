import { stat } from 'node:fs/promises';
import { asStorageError, StorageError } from '../../../common/src/errors.js';
import {
  BackupMode as WireBackupMode,
  type BackupPrepareRequest,
  type BackupPrepareResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { backupDirs } from '../backup/backup-dirs.js';
import { type BackupMode, type BackupDiskPlan, prepareBackup } from '../backup/prepare-backup.js';
import { runningBackups } from '../backup/running-backups.js';
import { checkDomainName, checkTarget } from '../libvirt/domain.js';
import { freezeModeOf } from '../libvirt/freeze.js';
import { domainLockKey } from '../locks/path-locks.js';
import { formatName } from './image-format.js';
import type { AgentContext, CallContext } from './context.js';
import { enumName, requirePath } from './validate.js';

const METHOD = 'BackupPrepare';
/** The contract's backup modes and the agent's names for them (backup/prepare-backup.ts). */
const MODES: ReadonlyMap<WireBackupMode, BackupMode> = new Map([
  [WireBackupMode.BACKUP_MODE_FULL, 'FULL'],
  [WireBackupMode.BACKUP_MODE_INCREMENT, 'INCREMENT'],
]);

/**
 * tm pre_backup[_live]: validates the request, resolves every path inside the roots, and runs the
 * backup (backup/prepare-backup.ts) under the VM directory's lock, registered so BackupCancel can
 * abort it.
 */
export async function backupPrepare(
  agent: AgentContext,
  req: BackupPrepareRequest,
  call: CallContext,
): Promise<BackupPrepareResponse> {
  const onedVmDir = requirePath(agent, METHOD, 'vm_dir', req.vmDir);
  const what = `backup prepare ${agent.name}:${onedVmDir}`;
  const mode = enumName(agent, METHOD, 'mode', req.mode, MODES);
  if (req.live) checkDomainName(req.domain, `${what}: domain`);
  if (req.disks.length === 0) throw new StorageError('INVALID_ARGUMENT', `${what}: no disks to back up`);
  if (
    mode === 'FULL'
      ? req.backupId !== 0 || req.parentId !== -1
      : req.backupId !== req.parentId + 1 || req.parentId < -1
  ) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${what}: backup_id ${req.backupId} and parent_id ${req.parentId} do not fit mode ${mode}`,
    );
  }
  const vmDir = await agent.roots.resolve(onedVmDir, 'vm_dir');
  const planned = req.disks.map((d) => {
    if (req.live) checkTarget(d.target, `${what}: disk ${d.diskId} target`);
    const format = formatName(agent, METHOD, `disks[${d.diskId}].format`, d.format);
    return { diskId: d.diskId, target: d.target, format };
  });
  // A live backup is one critical section with every other live action on the domain; what each
  // disk.N leads to is read inside it (a live snapshot moves it).
  return agent.locks.withLock(
    req.live ? [vmDir, domainLockKey(req.domain)] : [vmDir],
    what,
    () =>
      runningBackups(agent).run(vmDir, call.signal, async (signal) => {
        const started = performance.now();
        const disks: BackupDiskPlan[] = [];
        for (const d of planned) {
          const onedDisk = `${onedVmDir}/disk.${d.diskId}`;
          const file = await agent.roots.resolveTarget(onedDisk, 'disk');
          await stat(file).catch((err: unknown) => {
            throw asStorageError(err, 'backup prepare', `${agent.name}:${onedDisk}`);
          });
          disks.push({ ...d, file });
        }
        const dirs = backupDirs(vmDir);
        const result = await prepareBackup({
          vmId: req.vmId,
          domain: req.domain,
          live: req.live,
          mode,
          backupId: req.backupId,
          parentId: req.parentId,
          freeze: freezeModeOf(req.freeze, what),
          vmXml: req.vmXml,
          dirs,
          disks,
          uri: agent.libvirtUri,
          what,
          log: call.log,
          signal,
          scope: agent.roots,
          progress: call.progress,
        }).catch((err: unknown) => {
          if (signal.aborted && !call.signal.aborted) {
            throw new StorageError('TOOL_FAILED', `${what}: cancelled by backup_cancel`, { cause: err });
          }
          throw asStorageError(err, 'backup prepare', `${agent.name}:${onedVmDir}`);
        });
        const out: BackupPrepareResponse = { method: result.method, disks: [] };
        for (const d of result.disks) {
          const st = await stat(d.file);
          out.disks.push({
            diskId: d.diskId,
            path: `${onedVmDir}/backup/${d.file.slice(dirs.bck.length + 1)}`,
            bytes: st.blocks * 512,
            type: d.type === 'FULL' ? WireBackupMode.BACKUP_MODE_FULL : WireBackupMode.BACKUP_MODE_INCREMENT,
            newChainReason: d.newChainReason ?? '',
          });
        }
        call.log.info(
          {
            vmDir: onedVmDir,
            mode,
            backupId: req.backupId,
            live: req.live,
            ...out,
            ms: Math.round(performance.now() - started),
          },
          'backup prepared',
        );
        return out;
      }),
    call.signal,
  );
}
