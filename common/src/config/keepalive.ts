import type { ChannelOptions } from '@grpc/grpc-js';
import type { Fields } from './fields.js';

/**
 * HTTP/2 keepalive on the gRPC connections between the coordinator and the agents (the
 * `keepalive` section of both configs, docs/reliability.md#network-partitions-mid-transfer). A
 * long call (a Receive moving a disk) sends nothing for its whole length; a peer that vanished
 * without a reset (a cut link, a host that lost power) would leave it waiting for the transfer
 * deadline (hours). Each end pings
 * the other every `intervalMs` while calls are open and drops the connection when a ping is not
 * answered within `timeoutMs`: its calls then fail (the coordinator: AGENT_UNAVAILABLE; the agent:
 * the call is cancelled, its temporaries removed). A partition is noticed within their sum.
 */
export interface Keepalive {
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

export const DEFAULT_KEEPALIVE: Keepalive = { intervalMs: 20_000, timeoutMs: 10_000 };

/** Reads `keepalive.intervalSeconds` and `keepalive.timeoutSeconds` (1 s to 1 h each). */
export function parseKeepalive(f: Fields): Keepalive {
  const k = f.object('keepalive', false);
  if (!k) return DEFAULT_KEEPALIVE;
  const intervalMs = k.int('intervalSeconds', DEFAULT_KEEPALIVE.intervalMs / 1000, 1, 3600) * 1000;
  const timeoutMs = k.int('timeoutSeconds', DEFAULT_KEEPALIVE.timeoutMs / 1000, 1, 3600) * 1000;
  k.done();
  return { intervalMs, timeoutMs };
}

/** The grpc-js options (channel or server) that make it ping as `k` says. */
export function keepaliveOptions(k: Keepalive): ChannelOptions {
  return { 'grpc.keepalive_time_ms': k.intervalMs, 'grpc.keepalive_timeout_ms': k.timeoutMs };
}
