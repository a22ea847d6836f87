import type { ActionContext } from '../action-context.js';
import { whyNotAnswering } from './agent-answers.js';

/**
 * Where a datastore monitor runs (get_destination_host): the first BRIDGE_LIST host whose agent
 * answers, or the front-end's agent when the list is empty or nobody answers.
 */
export async function monitorHost(ctx: ActionContext, bridgeList: readonly string[]): Promise<string> {
  for (const host of bridgeList) {
    const why = await whyNotAnswering(ctx, host);
    if (why === undefined) return host;
    ctx.logger.warn({ host, err: why }, 'datastore monitor: BRIDGE_LIST host passed over');
  }
  return ctx.agents.frontend;
}
