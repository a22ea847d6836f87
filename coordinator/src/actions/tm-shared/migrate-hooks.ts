import { NO_OUTPUT, type ActionContext, type ActionResult } from '../action-context.js';
import { dirname } from '../host-path.js';
import { fanOutMigrateHook } from '../tm-common/migrate-fan-out.js';
import { parseMigrateCall } from '../tm-local/migrate-hooks.js';

/** premigrate in shared mode (reference 2.3): the disks are already where the VM goes; fan out only. */
export async function premigrateShared(ctx: ActionContext): Promise<ActionResult> {
  const call = parseMigrateCall(ctx);
  if (ctx.agents.canonical(call.source) === ctx.agents.canonical(call.destination)) return NO_OUTPUT;
  if (!call.nested) await fanOutMigrateHook(ctx, call);
  return NO_OUTPUT;
}

/**
 * postmigrate in shared mode: only a change of system datastore leaves a directory behind (under the
 * previous datastore), which goes; then the other TM drivers' hooks run.
 */
export async function postmigrateShared(ctx: ActionContext): Promise<ActionResult> {
  const call = parseMigrateCall(ctx);
  const previousDs = call.vm.previousHistory?.dsId ?? call.dsId;
  if (previousDs !== call.dsId) {
    await ctx.ops.call(call.source, 'delete', {
      path: `${dirname(dirname(call.vmDir))}/${previousDs}/${call.vmId}`,
    });
  }
  if (!call.nested) await fanOutMigrateHook(ctx, call);
  return NO_OUTPUT;
}
