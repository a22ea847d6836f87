import type { ActionContext } from '../action-context.js';

/** A BRIDGE_LIST host that does not answer Hello within this long is passed over. */
export const HEALTH_CHECK_MS = 3_000;

/**
 * Where a datastore monitor runs (get_destination_host): the first BRIDGE_LIST host whose agent
 * answers, or the front-end's agent when the list is empty or nobody answers.
 */
export async function monitorHost(ctx: ActionContext, bridgeList: readonly string[]): Promise<string> {
  for (const host of bridgeList) {
    try {
      await ctx.agents.get(host).call('hello', {}, { deadlineMs: HEALTH_CHECK_MS, requestId: ctx.requestId });
      return host;
    } catch (err) {
      ctx.logger.warn(
        { host, err: (err as Error).message },
        'datastore monitor: BRIDGE_LIST host passed over',
      );
    }
  }
  return ctx.agents.frontend;
}
