import { NO_OUTPUT, type ActionContext, type ActionResult } from '../action-context.js';
import { expectArgs, parseHostPath, parseId } from '../host-path.js';

const USAGE = ['host:path', 'vm_id', 'ds_id'];

/**
 * delete (reference 2.2, 2.5): removes a disk (with nothing else) or the whole VM directory.
 * Something already gone is a success, so oned's retries and repeats are harmless.
 */
export async function deleteLocal(ctx: ActionContext): Promise<ActionResult> {
  expectArgs(ctx.action, ctx.args, USAGE);
  const target = parseHostPath(ctx.args[0], 'path');
  parseId(ctx.args[1], 'vm_id');
  parseId(ctx.args[2], 'ds_id');
  const r = await ctx.ops.call(target.host, 'delete', { path: target.path });
  if (!r.existed) ctx.info(`${ctx.action}: ${target.host}:${target.path} was already gone`);
  return NO_OUTPUT;
}
