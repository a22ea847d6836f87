import { StorageError } from '../../../../common/src/errors.js';
import type { VmInfo } from '../../oned/vm-xml.js';
import { parseVm } from '../../oned/vm-xml.js';
import type { ParsedArgs } from '../action-args.js';
import type { ActionContext } from '../action-context.js';
import type { MIGRATE_ARGS } from '../oned-signatures.js';

export interface MigrateCall {
  source: string;
  destination: string;
  vmDir: string;
  vmId: number;
  dsId: number;
  /** Set when another TM's hook called us (docs/opennebula/tm-actions.md#migrate-hook-fan-out): then we must not fan out again. */
  nested: boolean;
  vm: VmInfo;
}

/** The parsed arguments and the base64 VM XML on stdin of premigrate / postmigrate / failmigrate. */
export function migrateCall(ctx: ActionContext, args: ParsedArgs<typeof MIGRATE_ARGS.args>): MigrateCall {
  const text = ctx.stdin.toString('utf8').trim();
  if (!/^[A-Za-z0-9+/=\s]+$/.test(text) || text === '') {
    throw new StorageError(
      'INVALID_ARGUMENT',
      'stdin: expected the VM XML in base64 (one line), got something else',
    );
  }
  let vm: VmInfo;
  try {
    vm = parseVm(Buffer.from(text, 'base64').toString('utf8'), args.vm_id);
  } catch (err) {
    throw new StorageError('INVALID_ARGUMENT', `stdin: ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    source: args.source_host,
    destination: args.destination_host,
    vmDir: args.remote_system_dir,
    vmId: args.vm_id,
    dsId: args.ds_id,
    nested: args.nested_from_tm !== undefined,
    vm,
  };
}
