import type { ActionContext } from '../action-context.js';

/** A BRIDGE_LIST host whose agent does not answer Hello within this long is passed over. */
export const HEALTH_CHECK_MS = 3_000;

/**
 * Why the agent of `host` is not fit to work for this action: undefined when it answers Hello
 * within HEALTH_CHECK_MS, else the reason (no agent configured for the host, unreachable, timed
 * out). The one health check of the bridge choices: monitorHost and datastoreHost.
 */
export async function whyNotAnswering(ctx: ActionContext, host: string): Promise<string | undefined> {
  try {
    await ctx.agents
      .get(host)
      .call('hello', {}, { deadlineMs: HEALTH_CHECK_MS, requestId: ctx.requestId, signal: ctx.signal });
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
