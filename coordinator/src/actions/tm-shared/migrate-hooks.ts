import { NO_OUTPUT } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { dirname } from '../host-path.js';
import { MIGRATE_ARGS } from '../oned-signatures.js';
import { migrateCall } from '../tm-common/migrate-call.js';
import { fanOutMigrateHook } from '../tm-common/migrate-fan-out.js';

/** premigrate in shared mode (docs/opennebula/tm-actions.md#premigrate): the disks are already where the VM goes; fan out only. */
export const premigrateShared = defineAction(
  {
    signature: MIGRATE_ARGS,
    does: "nothing to copy (the disks are already there); runs the other TM drivers' premigrate",
  },
  async (ctx, args) => {
    const call = migrateCall(ctx, args);
    if (ctx.agents.canonical(call.source) === ctx.agents.canonical(call.destination)) return NO_OUTPUT;
    if (!call.nested) await fanOutMigrateHook(ctx, call);
    return NO_OUTPUT;
  },
);

/**
 * postmigrate in shared mode: only a change of system datastore leaves a directory behind (under the
 * previous datastore), which goes; then the other TM drivers' hooks run.
 */
export const postmigrateShared = defineAction(
  {
    signature: MIGRATE_ARGS,
    does: "removes the directory a change of system datastore left behind; runs the other TM drivers' postmigrate",
  },
  async (ctx, args) => {
    const call = migrateCall(ctx, args);
    const previousDs = call.vm.previousHistory?.dsId ?? call.dsId;
    if (previousDs !== call.dsId) {
      await ctx.ops.call(call.source, 'delete', {
        path: `${dirname(dirname(call.vmDir))}/${previousDs}/${call.vmId}`,
      });
    }
    if (!call.nested) await fanOutMigrateHook(ctx, call);
    return NO_OUTPUT;
  },
);
