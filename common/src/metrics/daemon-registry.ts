import { X509Certificate } from 'node:crypto';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric of ours starts with this (docs/metrics.md). */
export const METRIC_PREFIX = 'one_storage_';
const MS_PER_S = 1000;

/**
 * A daemon's own registry, never prom-client's global one: tests run several agents in one
 * process, and each must report only its own numbers. It starts with the process metrics
 * (CPU, memory, event loop lag, file descriptors; prefixed) and the expiry of the daemon's own
 * certificate, which `cert` is (PEM).
 */
export function daemonRegistry(cert: Buffer): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  // validTo reads "Mar  5 12:00:00 2029 GMT", which Date.parse takes (validToDate is Node 22's).
  const notAfterS = Math.floor(Date.parse(new X509Certificate(cert).validTo) / MS_PER_S);
  new Gauge({
    name: `${METRIC_PREFIX}certificate_not_after_seconds`,
    help: "When this daemon's TLS certificate expires, in seconds since the epoch.",
    registers: [registry],
  }).set(notAfterS);
  return registry;
}
