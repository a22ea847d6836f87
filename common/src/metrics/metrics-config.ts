import { isIP } from 'node:net';
import type { Fields } from '../config/fields.js';

/** The port Prometheus exporters of this kind conventionally take when the config names none. */
export const DEFAULT_METRICS_PORT = 9464;

/**
 * The `metrics` section of the agent's and the coordinator's configs (docs/metrics.md#configuration).
 * Absent: no metrics listener at all.
 */
export interface MetricsConfig {
  /** host:port the /metrics listener binds. */
  readonly listen: string;
  /**
   * Mutual TLS with the node's own certificate (its `tls` section): the scraper must present a
   * certificate from the cloud's CA. Required on any address but loopback.
   */
  readonly tls: boolean;
}

/** Reads `metrics` from a daemon's config; a non-loopback listen without tls is refused, naming the key. */
export function parseMetricsConfig(f: Fields): MetricsConfig | undefined {
  const m = f.object('metrics', false);
  if (!m) return undefined;
  const listen = m.address('listen', `127.0.0.1:${DEFAULT_METRICS_PORT}`);
  const tls = m.bool('tls', false);
  if (!tls && !isLoopback(hostOf(listen))) {
    m.fail(
      'tls',
      `must be true when metrics.listen is not a loopback address (${listen}): only mutual TLS keeps /metrics to scrapers holding a certificate of the cloud's CA`,
    );
  }
  m.done();
  return { listen, tls };
}

/** Whether `host` (as written in a listen address) only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1';
  return false;
}

function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':'));
}
