import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { StorageError } from '../../../common/src/errors.js';
import { shownUrl } from '../../../common/src/shown-url.js';

/** Redirects followed before giving up (curl -L's default is 50; a loop shows long before). */
const MAX_REDIRECTS = 5;
/** No byte (or no connection) for this long: the attempt failed, and may be retried. */
export const IDLE_TIMEOUT_MS = 60_000;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export interface GetOptions {
  /** CAs an https server's certificate must chain to (system CAs and the cloud's CA). */
  ca: ReadonlyArray<string | Buffer>;
  signal: AbortSignal;
  headers?: Record<string, string>;
  idleTimeoutMs?: number;
}

/** A response with status 2xx/4xx/5xx (redirects followed), and the URL that gave it. */
export interface GotResponse {
  res: IncomingMessage;
  url: URL;
}

/** An attempt that ran out of time without a byte (named, so the retry message says so). */
export class IdleTimeout extends Error {
  readonly code = 'ETIMEDOUT';
}

/**
 * One GET of an http(s) URL with Node's own clients (no shell, no curl): TLS verified against
 * `ca`, redirects followed up to MAX_REDIRECTS (to http or https only), no content encoding
 * asked for (the bytes are the file's), a fresh connection each time. The caller reads or
 * destroys `res`; `signal` destroys everything.
 */
export async function httpGet(url: URL, opts: GetOptions): Promise<GotResponse> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const res = await requestOnce(current, opts);
    const status = res.statusCode ?? 0;
    if (!REDIRECTS.has(status)) return { res, url: current };
    res.resume();
    const location = res.headers.location;
    if (hop >= MAX_REDIRECTS || location === undefined)
      throw new StorageError(
        'SOURCE_UNAVAILABLE',
        location === undefined
          ? `${shownUrl(current)} answered ${status} without a Location`
          : `more than ${MAX_REDIRECTS} redirects from ${shownUrl(url)}`,
      );
    const next = new URL(location, current);
    if (next.protocol !== 'http:' && next.protocol !== 'https:')
      throw new StorageError(
        'INVALID_ARGUMENT',
        `${shownUrl(current)} redirects to the unsupported scheme ${next.protocol}`,
      );
    current = next;
  }
}

function requestOnce(url: URL, opts: GetOptions): Promise<IncomingMessage> {
  const timeout = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const common = {
      method: 'GET',
      headers: { 'user-agent': 'one-storage-agent', 'accept-encoding': 'identity', ...opts.headers },
      signal: opts.signal,
      agent: false as const,
      timeout,
    };
    const req =
      url.protocol === 'https:'
        ? https.request(url, { ...common, ca: [...opts.ca] }, resolve)
        : http.request(url, common, resolve);
    req.on('error', reject);
    // Covers the connection and every silence while the body arrives.
    req.on('timeout', () => req.destroy(new IdleTimeout(`no data from the server for ${timeout / 1000} s`)));
    req.end();
  });
}
