import { NO_OUTPUT } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { DELETE_ARGS } from '../oned-signatures.js';

/**
 * delete (docs/opennebula/tm-actions.md#delete): removes a disk (with nothing else) or the whole VM directory.
 * Something already gone is a success, so oned's retries and repeats are harmless.
 */
export const deleteLocal = defineAction(
  { signature: DELETE_ARGS, does: 'removes a disk or the whole VM directory; already gone is a success' },
  async (ctx, { path: target }) => {
    const r = await ctx.ops.call(target.host, 'delete', { path: target.path });
    if (!r.existed) ctx.info(`${ctx.action}: ${target.host}:${target.path} was already gone`);
    return NO_OUTPUT;
  },
);
