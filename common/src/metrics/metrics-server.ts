import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { StorageError, oneLine } from '../errors.js';
import type { Logger } from '../log.js';
import type { TlsMaterial } from '../tls.js';
import type { MetricsConfig } from './metrics-config.js';

/** The one route: what Prometheus scrapes by default. */
export const METRICS_PATH = '/metrics';

export interface MetricsServer {
  /** host:port actually bound (port 0 in the config gets a free one). */
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Serves `registry` at GET /metrics, plain http on loopback or https requiring a client
 * certificate from the cloud's CA (`config.tls`); every other method and path is a 404. The
 * listener knows nothing else of the daemon: it reads the registry and nothing more.
 */
export async function startMetricsServer(
  config: MetricsConfig,
  registry: Registry,
  tls: TlsMaterial,
  logger: Logger,
): Promise<MetricsServer> {
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== METRICS_PATH) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      (err: unknown) => {
        logger.error({ err }, 'metrics: collecting failed');
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('collecting failed\n');
      },
    );
  };
  const server = config.tls
    ? createHttpsServer(
        {
          ca: tls.ca,
          cert: tls.cert,
          key: tls.key,
          // Mutual TLS: no certificate from our CA, no handshake (docs/security.md#metrics).
          requestCert: true,
          rejectUnauthorized: true,
          minVersion: 'TLSv1.2',
        },
        handle,
      )
    : createHttpServer(handle);
  // A scraper that opens a connection and says nothing must not hold it forever.
  server.headersTimeout = SCRAPE_TIMEOUT_MS;
  server.requestTimeout = SCRAPE_TIMEOUT_MS;
  const sep = config.listen.lastIndexOf(':');
  const host = config.listen.slice(0, sep).replace(/^\[(.*)\]$/, '$1');
  const port = Number(config.listen.slice(sep + 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: unknown) => {
    throw new StorageError(
      'INTERNAL',
      `cannot listen on metrics.listen ${config.listen}: ${oneLine(err instanceof Error ? err.message : String(err))}`,
      { cause: err },
    );
  });
  const bound = server.address() as AddressInfo;
  const address =
    bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  logger.info({ address, tls: config.tls }, 'metrics listening');
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** How long one scrape request may take to arrive and be answered. */
const SCRAPE_TIMEOUT_MS = 10_000;
