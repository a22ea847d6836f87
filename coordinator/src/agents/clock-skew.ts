import { SKEW_FAILED_MS, skewWords } from '../../../common/src/clock-skew.js';
import { StorageError } from '../../../common/src/errors.js';
import type { AgentRegistry } from './agent-registry.js';

/** A clock is asked for only after a failure, and briefly: its answer only explains the failure. */
const CLOCK_DEADLINE_MS = 2_000;

/**
 * How far `host`'s clock is from the coordinator's (positive: ahead), from its Health answer's
 * now_ms against the middle of the round trip; undefined when it does not answer.
 */
export async function clockSkewMs(
  agents: AgentRegistry,
  host: string,
  requestId: string,
): Promise<number | undefined> {
  const sent = Date.now();
  const sentMono = performance.now();
  try {
    const h = await agents
      .get(host)
      .call('health', { deep: false }, { deadlineMs: CLOCK_DEADLINE_MS, requestId });
    return h.nowMs - (sent + (performance.now() - sentMono) / 2);
  } catch {
    return undefined;
  }
}

/**
 * A failure between agents, with the clock skew of any of `hosts` beyond SKEW_FAILED_MS named as its
 * likely cause: a host whose clock jumped refuses its peers' certificates (not yet valid, or
 * expired), and its peer only sees the connection closed. Other failures pass unchanged.
 */
export async function namingClockSkew(
  err: unknown,
  agents: AgentRegistry,
  hosts: readonly string[],
  requestId: string,
): Promise<unknown> {
  if (!(err instanceof StorageError) || err.reason === 'NO_SPACE') return err;
  const skewed: string[] = [];
  for (const host of hosts) {
    const skew = await clockSkewMs(agents, host, requestId);
    if (skew !== undefined && Math.abs(skew) > SKEW_FAILED_MS)
      skewed.push(`${agents.canonical(host)}'s clock is ${skewWords(skew)} the coordinator's`);
  }
  if (skewed.length === 0) return err;
  return new StorageError(
    err.reason,
    `${err.message}; clock skew: ${skewed.join(', ')} (certificates are checked against it): set the clock right (NTP) and retry`,
    { cause: err },
  );
}
