import { StorageError, oneLine } from '../../../../common/src/errors.js';
import { parseVm, type VmInfo } from '../../oned/vm-xml.js';
import type { ActionContext } from '../action-context.js';
import type { HostPath } from '../host-path.js';
import { BACKUP_HOOK_ARGS } from '../oned-signatures.js';
import { parseActionArgs } from '../parse-action-args.js';
import { fetchVm } from '../vm-lookup.js';

/** What oned appends to the VM XML when pre_backup or the datastore's backup failed. */
const FAILURE_MARK = /<BACKUP_RESULT>\s*FAILURE\s*<\/BACKUP_RESULT>/g;
const ANY_RESULT_MARK = /<BACKUP_RESULT>[^<]*<\/BACKUP_RESULT>/g;

export type BackupMode = 'FULL' | 'INCREMENT';

/** One pre/post backup hook call, parsed once. */
export interface BackupCall {
  vmDir: HostPath;
  diskIds: number[];
  deployId: string;
  vmId: number;
  vm: VmInfo;
  /** The raw VM XML (without oned's BACKUP_RESULT mark): stored in backup/vm.xml. */
  vmXml: string;
  /** `<BACKUP_RESULT>FAILURE</BACKUP_RESULT>` was appended: pre or the datastore failed. */
  failed: boolean;
  /** The `_live` hooks run for a running VM (LCM state BACKUP); the others for BACKUP_POWEROFF. */
  live: boolean;
}

/**
 * Parses `pre_backup[_live]` / `prebackup[_live]` / `post...` arguments in either form (six
 * arguments with the backup job id, or the guide's five: BACKUP_HOOK_ARGS), and the raw VM XML oned writes on stdin;
 * oned is asked for the VM only when stdin is empty.
 */
export async function parseBackupCall(ctx: ActionContext): Promise<BackupCall> {
  const args = parseActionArgs(BACKUP_HOOK_ARGS, ctx.args);
  const { 'host:vm_dir': vmDir, disk_ids: diskIds, deploy_id: deployId, vm_id: vmId } = args;
  const raw = ctx.stdin.toString('utf8');
  const failed = FAILURE_MARK.test(raw);
  const vmXml = raw.replace(ANY_RESULT_MARK, '').trim();
  let vm: VmInfo;
  if (vmXml === '') {
    vm = await fetchVm(ctx, vmId);
  } else {
    try {
      vm = parseVm(vmXml, vmId);
    } catch (err) {
      throw new StorageError('INVALID_ARGUMENT', `VM XML on stdin: ${oneLine((err as Error).message)}`, {
        cause: err,
      });
    }
  }
  return {
    vmDir,
    diskIds,
    deployId: deployId === '-' ? vm.deployId : deployId,
    vmId,
    vm,
    vmXml,
    failed,
    live: /_live(\.|$)/.test(ctx.action),
  };
}

export interface BackupIds {
  mode: BackupMode;
  backupId: number;
  parentId: number;
}

/**
 * Reference 4.2: FULL is backup 0 with no parent; INCREMENT is LAST_INCREMENT_ID+1 on top of
 * LAST_INCREMENT_ID (-1, or absent, starts a chain). INCREMENT_MODE=SNAPSHOT is not supported.
 */
export function backupIds(vm: VmInfo): BackupIds {
  const cfg = vm.backupConfig;
  const mode = (cfg['MODE'] ?? 'FULL').toUpperCase();
  if (mode !== 'FULL' && mode !== 'INCREMENT') {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `VM ${vm.id} BACKUP_CONFIG/MODE is "${mode}": FULL or INCREMENT`,
    );
  }
  if (mode === 'FULL') return { mode, backupId: 0, parentId: -1 };
  const incMode = (cfg['INCREMENT_MODE'] ?? 'CBT').toUpperCase();
  if (incMode !== 'CBT') {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `VM ${vm.id} BACKUP_CONFIG/INCREMENT_MODE is "${incMode}": one-storage supports CBT incremental backups only`,
    );
  }
  const lastText = cfg['LAST_INCREMENT_ID'] ?? '-1';
  if (!/^-?\d+$/.test(lastText)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `VM ${vm.id} BACKUP_CONFIG/LAST_INCREMENT_ID "${lastText}" is not a number`,
    );
  }
  const last = Math.max(-1, Number(lastText));
  return { mode, backupId: last + 1, parentId: last };
}
