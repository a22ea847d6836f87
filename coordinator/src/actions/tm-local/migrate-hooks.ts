import { StorageError } from '../../../../common/src/errors.js';
import type { VmInfo } from '../../oned/vm-xml.js';
import { parseVm } from '../../oned/vm-xml.js';
import { NO_OUTPUT, type ActionContext, type ActionResult } from '../action-context.js';
import { cleanPath, dirname, parseId } from '../host-path.js';
import { fanOutMigrateHook } from '../tm-common/migrate-fan-out.js';

const USAGE = 'source_host destination_host remote_system_dir vm_id ds_id [nested_from_tm]';
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

export interface MigrateCall {
  source: string;
  destination: string;
  vmDir: string;
  vmId: number;
  dsId: number;
  /** Set when another TM's hook called us (reference 2.6): then we must not fan out again. */
  nested: boolean;
  vm: VmInfo;
}

/** Arguments and the base64 VM XML on stdin of premigrate / postmigrate / failmigrate. */
export function parseMigrateCall(ctx: ActionContext): MigrateCall {
  const a = ctx.args;
  if (a.length !== 5 && a.length !== 6) {
    throw new StorageError('INVALID_ARGUMENT', `expected 5 or 6 arguments (${USAGE}), got ${a.length}`);
  }
  for (const [i, field] of [
    [0, 'source_host'],
    [1, 'destination_host'],
  ] as const) {
    if (!HOSTNAME.test(a[i] ?? ''))
      throw new StorageError('INVALID_ARGUMENT', `argument ${field} "${a[i] ?? ''}" is not a hostname`);
  }
  const vmDir = a[2] ?? '';
  if (!vmDir.startsWith('/'))
    throw new StorageError(
      'INVALID_ARGUMENT',
      `argument remote_system_dir "${vmDir}" is not an absolute path`,
    );
  const vmId = parseId(a[3], 'vm_id');
  const text = ctx.stdin.toString('utf8').trim();
  if (!/^[A-Za-z0-9+/=\s]+$/.test(text) || text === '') {
    throw new StorageError(
      'INVALID_ARGUMENT',
      'stdin: expected the VM XML in base64 (one line), got something else',
    );
  }
  let vm: VmInfo;
  try {
    vm = parseVm(Buffer.from(text, 'base64').toString('utf8'), vmId);
  } catch (err) {
    throw new StorageError('INVALID_ARGUMENT', `stdin: ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    source: a[0] as string,
    destination: a[1] as string,
    vmDir: cleanPath(vmDir),
    vmId,
    dsId: parseId(a[4], 'ds_id'),
    nested: a.length === 6,
    vm,
  };
}

/**
 * premigrate (ssh, reference 2.2): before a live migration the destination's VM directory is
 * wiped (the hypervisor copies the disks during the migration); then the hook of every other TM
 * the VM's disks use runs (reference 2.6). Same host: nothing to do.
 */
export async function premigrateLocal(ctx: ActionContext): Promise<ActionResult> {
  const call = parseMigrateCall(ctx);
  if (ctx.agents.canonical(call.source) === ctx.agents.canonical(call.destination)) return NO_OUTPUT;
  await ctx.ops.call(call.destination, 'delete', { path: call.vmDir });
  if (!call.nested) await fanOutMigrateHook(ctx, call);
  return NO_OUTPUT;
}

/**
 * postmigrate (ssh, reference 2.2): the other TMs' hooks first, then the VM directory left on the
 * source (under the previous placement's system datastore) is removed. Same host and same
 * datastore: nothing to remove.
 */
export async function postmigrateLocal(ctx: ActionContext): Promise<ActionResult> {
  const call = parseMigrateCall(ctx);
  if (!call.nested) await fanOutMigrateHook(ctx, call);
  const previousDs = call.vm.previousHistory?.dsId ?? call.dsId;
  const sameHost = ctx.agents.canonical(call.source) === ctx.agents.canonical(call.destination);
  if (sameHost && previousDs === call.dsId) return NO_OUTPUT;
  const dsRoot = dirname(dirname(call.vmDir));
  await ctx.ops.call(call.source, 'delete', { path: `${dsRoot}/${previousDs}/${call.vmId}` });
  return NO_OUTPUT;
}
