import { StorageError, oneLine } from '../../../../common/src/errors.js';
import { parseVm, type VmInfo } from '../../oned/vm-xml.js';
import type { ActionContext } from '../action-context.js';
import { parseHostPath, parseId, type HostPath } from '../host-path.js';
import { fetchVm } from '../vm-lookup.js';

/** OpenNebula's six arguments (reference 1.4, 8.1). */
const USAGE_6 = ['host:vm_dir', 'disk_ids', 'deploy_id', 'bj_id|-', 'vm_id', 'ds_id'];
/** The storage guide's five (no backup job id). */
const USAGE_5 = ['host:vm_dir', 'disk_ids', 'deploy_id', 'vm_id', 'ds_id'];
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
 * arguments with the backup job id, or the guide's five), and the raw VM XML oned writes on stdin;
 * oned is asked for the VM only when stdin is empty.
 */
export async function parseBackupCall(ctx: ActionContext): Promise<BackupCall> {
  const six = ctx.args.length === USAGE_6.length;
  if (!six && ctx.args.length !== USAGE_5.length) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `expected ${USAGE_6.length} arguments (${USAGE_6.join(' ')}) or ${USAGE_5.length} (${USAGE_5.join(' ')}), got ${ctx.args.length}`,
    );
  }
  const a = (i: number): string | undefined => ctx.args[i];
  const vmDir = parseHostPath(a(0), 'host:vm_dir');
  const diskIds = parseDiskIds(a(1) ?? '');
  const deployId = a(2) ?? '';
  const vmId = parseId(a(six ? 4 : 3), 'vm_id');
  parseId(a(six ? 5 : 4), 'ds_id');
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

/** `0:1:3`, the disk ids joined by ':' (oned's BACKUP_CONFIG/DISK_IDS order). */
export function parseDiskIds(arg: string): number[] {
  const parts = arg.split(':');
  if (arg === '' || parts.some((p) => !/^\d{1,6}$/.test(p))) {
    throw new StorageError('INVALID_ARGUMENT', `argument disk_ids "${arg}" is not disk ids joined by ':'`);
  }
  return parts.map(Number);
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
