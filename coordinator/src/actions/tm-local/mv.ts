import { randomBytes } from 'node:crypto';
import { StorageError } from '../../../../common/src/errors.js';
import { LcmState } from '../../oned/vm-state.js';
import { fetchVm } from '../vm-lookup.js';
import { NO_OUTPUT, type ActionContext } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { diskIdOf, dirname, formatHostPath, type HostPath } from '../host-path.js';
import { MV_ARGS } from '../oned-signatures.js';
import { kindOf, transfer } from '../transfer.js';
import { enableLocalMonitoring } from '../tm-common/monitoring-marker.js';
import { withMadeDirectories } from '../made-directories.js';

/** While oned does not know where the VM was, there is nothing safe to move (ssh/mv does the same). */
const SKIP_STATES: ReadonlySet<number> = new Set([
  LcmState.PrologMigrateUnknown,
  LcmState.PrologMigrateUnknownFailure,
]);

/**
 * mv in local mode (docs/opennebula/tm-actions.md#mv): a disk-level call does nothing (the directory-level call that
 * follows moves the whole VM directory, snapshots included); the directory moves host to host or
 * host ↔ front-end (STOP/RESUME, MIGRATE), the source deleted only after the destination is in
 * place and verified. Nothing moves when both ends are the same storage. A move that fails leaves
 * the destination as it was: the directories this call made go again, and the `.monitor` marker is
 * written only once the directory is there. A repeat after success finds the source gone and the
 * destination present: success.
 */
export const mvLocal = defineAction(
  {
    signature: MV_ARGS,
    does: 'moves the VM directory host to host or host to front-end, the source deleted once the copy is verified; nothing when both share the storage',
  },
  async (ctx, { source, destination, vm_id: vmId }) => {
    if (diskIdOf(source.path) !== undefined) return NO_OUTPUT;
    const vm = await fetchVm(ctx, vmId);
    if (SKIP_STATES.has(vm.lcmState)) {
      ctx.info(`${ctx.action}: VM ${vmId} is in LCM state ${vm.lcmState}: nothing to move`);
      return NO_OUTPUT;
    }
    const sameHost = ctx.agents.canonical(source.host) === ctx.agents.canonical(destination.host);
    if (sameHost && source.path === destination.path) return NO_OUTPUT;

    // Both paths are checked before the destination's directory is made (preflight.ts).
    const sourceKind = await kindOf(ctx, source);
    const destinationKind = await kindOf(ctx, destination);
    if (sourceKind === undefined) {
      if (destinationKind !== undefined) return NO_OUTPUT; // already moved by an earlier call
      throw new StorageError(
        'NOT_FOUND',
        `neither ${formatHostPath(source)} nor ${formatHostPath(destination)} exists`,
      );
    }
    const moved = await withMadeDirectories(ctx, async (dirs) => {
      await dirs.make({ host: destination.host, path: dirname(destination.path) });
      if (!sameHost && source.path === destination.path && (await sharesStorage(ctx, source, destination))) {
        ctx.info(
          `${ctx.action}: ${source.host} and ${destination.host} share ${dirname(destination.path)}: nothing to move`,
        );
        return false;
      }
      await transfer(ctx, source, destination, { sparse: true });
      return true;
    });
    if (!moved) return NO_OUTPUT;
    const marker = { host: source.host, path: `${dirname(source.path)}/.monitor` };
    if ((await kindOf(ctx, marker)) !== undefined) {
      await enableLocalMonitoring(ctx, { host: destination.host, path: dirname(destination.path) });
    }
    await ctx.ops.call(source.host, 'delete', { path: source.path });
    return NO_OUTPUT;
  },
);

/**
 * Whether a file created on `b` is visible at the same path on `a` (OpenNebula's mktemp check):
 * then both hosts mount the same storage and moving would delete what we just wrote.
 */
async function sharesStorage(ctx: ActionContext, a: HostPath, b: HostPath): Promise<boolean> {
  // A new random name per probe (128 bits): a retried CreateProbe finds this probe, not a second one.
  const name = `.probe-${randomBytes(16).toString('hex')}`;
  const probe = await ctx.ops.call(b.host, 'createProbe', { dir: dirname(b.path), name });
  try {
    return (await ctx.ops.call(a.host, 'stat', { path: probe.path, follow: false })).exists;
  } finally {
    await ctx.ops.call(b.host, 'delete', { path: probe.path });
  }
}
