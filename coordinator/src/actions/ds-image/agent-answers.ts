import type { ActionContext } from '../action-context.js';

/** A BRIDGE_LIST host whose agent does not answer Hello within this long is passed over. */
export const HEALTH_CHECK_MS = 3_000;

/**
 * Why the agent of `host` is not fit to work for this action: undefined when it connects and
 * answers Hello within HEALTH_CHECK_MS in all, else the reason (no agent configured for the host, unreachable, timed
 * out). The one health check of the bridge choices: monitorHost and datastoreHost.
 */
export async function whyNotAnswering(ctx: ActionContext, host: string): Promise<string | undefined> {
  const started = performance.now();
  try {
    const agent = ctx.agents.get(host);
    // An agent that restarted a moment ago is healthy: wait for its channel to reconnect.
    await agent.ready(HEALTH_CHECK_MS, ctx.signal);
    const left = Math.max(1, HEALTH_CHECK_MS - Math.round(performance.now() - started));
    await agent.call('hello', {}, { deadlineMs: left, requestId: ctx.requestId, signal: ctx.signal });
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
