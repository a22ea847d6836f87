// GETs from a daemon's metrics listener over real HTTP(S), as a scraper would.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import type { TlsFiles } from '../../common/src/tls.js';

export interface Scraped {
  status: number;
  contentType: string;
  body: string;
}

/**
 * `method path` on `address` (host:port): plain http, or https trusting `ca` and presenting
 * `client` when given (a client without one must be refused by a mutual-TLS listener).
 */
export function scrape(
  address: string,
  opts: { path?: string; method?: string; ca?: string; client?: Pick<TlsFiles, 'cert' | 'key'> } = {},
): Promise<Scraped> {
  const sep = address.lastIndexOf(':');
  const common = {
    host: address.slice(0, sep),
    port: Number(address.slice(sep + 1)),
    path: opts.path ?? '/metrics',
    method: opts.method ?? 'GET',
    timeout: 5_000,
  };
  return new Promise((resolve, reject) => {
    const req = opts.ca
      ? httpsRequest({
          ...common,
          ca: readFileSync(opts.ca),
          ...(opts.client
            ? { cert: readFileSync(opts.client.cert), key: readFileSync(opts.client.key) }
            : {}),
        })
      : httpRequest(common);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers['content-type'] ?? ''),
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${address} in 5 s`)));
    req.on('error', reject);
    req.end();
  });
}
