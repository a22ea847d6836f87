import { NO_OUTPUT } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { dirname } from '../host-path.js';
import { MIGRATE_ARGS } from '../oned-signatures.js';
import { fanOutMigrateHook } from '../tm-common/migrate-fan-out.js';
import { migrateCall } from '../tm-common/migrate-call.js';

/**
 * premigrate (ssh, docs/opennebula/tm-actions.md#premigrate): before a live migration the destination's VM directory is
 * wiped (the hypervisor copies the disks during the migration); then the hook of every other TM
 * the VM's disks use runs (docs/opennebula/tm-actions.md#migrate-hook-fan-out). Same host: nothing to do.
 */
export const premigrateLocal = defineAction(
  {
    signature: MIGRATE_ARGS,
    does: "wipes the destination's VM directory before a live migration, then runs the other TM drivers' premigrate",
  },
  async (ctx, args) => {
    const call = migrateCall(ctx, args);
    if (ctx.agents.canonical(call.source) === ctx.agents.canonical(call.destination)) return NO_OUTPUT;
    await ctx.ops.call(call.destination, 'delete', { path: call.vmDir });
    if (!call.nested) await fanOutMigrateHook(ctx, call);
    return NO_OUTPUT;
  },
);

/**
 * postmigrate (ssh, docs/opennebula/tm-actions.md#postmigrate): the other TMs' hooks first, then the VM directory left on the
 * source (under the previous placement's system datastore) is removed. Same host and same
 * datastore: nothing to remove.
 */
export const postmigrateLocal = defineAction(
  {
    signature: MIGRATE_ARGS,
    does: "runs the other TM drivers' postmigrate, then removes the VM directory left on the source",
  },
  async (ctx, args) => {
    const call = migrateCall(ctx, args);
    if (!call.nested) await fanOutMigrateHook(ctx, call);
    const previousDs = call.vm.previousHistory?.dsId ?? call.dsId;
    const sameHost = ctx.agents.canonical(call.source) === ctx.agents.canonical(call.destination);
    if (sameHost && previousDs === call.dsId) return NO_OUTPUT;
    const dsRoot = dirname(dirname(call.vmDir));
    await ctx.ops.call(call.source, 'delete', { path: `${dsRoot}/${previousDs}/${call.vmId}` });
    return NO_OUTPUT;
  },
);
