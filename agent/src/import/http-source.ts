import type { IncomingMessage } from 'node:http';
import { StorageError, oneLine } from '../../../common/src/errors.js';
import { shownUrl } from '../../../common/src/shown-url.js';
import { type Clock, realClock } from './clock.js';
import { httpGet, IdleTimeout } from './http-get.js';

/** Retries after the first attempt (curl --retry 3 in OpenNebula's downloader). */
export const MAX_RETRIES = 3;
/** First pause before a retry; each next one doubles. */
const RETRY_DELAY_MS = 500;
/** Network errors worth another attempt (curl --retry-all-errors retries these too). */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/**
 * Thrown when a resumed request would not continue where the last one stopped (the server ignored
 * Range, or the file changed under it): every byte already passed on is void, and the import starts
 * over from byte 0 (new digests, new temporary file).
 */
export class StartOver extends Error {}

export interface HttpSourceOptions {
  ca: ReadonlyArray<string | Buffer>;
  signal: AbortSignal;
  /** For messages: "cp image 7 from http://...". */
  what: string;
  /** Attempts left across start-overs: one budget for the whole import. */
  budget: { retries: number };
  clock?: Clock;
  idleTimeoutMs?: number;
  /** Called with the size the server announced (Content-Length of the full body). */
  onTotal?: (total: number | undefined) => void;
  /** Called before each retry, for the log. */
  onRetry?: (why: string, offset: number) => void;
}

/**
 * The bytes of an http(s) URL as they arrive (docs/image-datastore.md#registering-an-image-cp-on-the-agent).
 * After a transient failure (a reset, a timeout, a 5xx, a body shorter than its Content-Length)
 * it asks for the rest with `Range: bytes=<reached>-` (and If-Range with the ETag or Last-Modified
 * the server gave), at most `budget.retries` times in all; a server that answers the whole file
 * instead, or another file, makes it throw StartOver. A 404 is NOT_FOUND naming the URL; a body
 * still short after the retries is DATA_LOSS; any other failure SOURCE_UNAVAILABLE.
 */
export async function* httpSource(url: URL, o: HttpSourceOptions): AsyncGenerator<Buffer> {
  const clock = o.clock ?? realClock;
  let offset = 0;
  let total: number | undefined;
  let validator: string | undefined;
  let current = url;
  let tries = 1;
  for (;;) {
    let failure: unknown;
    let res: IncomingMessage | undefined;
    try {
      const headers: Record<string, string> =
        offset > 0 ? { range: `bytes=${offset}-`, ...(validator ? { 'if-range': validator } : {}) } : {};
      const got = await httpGet(current, {
        ca: o.ca,
        signal: o.signal,
        headers,
        ...(o.idleTimeoutMs !== undefined ? { idleTimeoutMs: o.idleTimeoutMs } : {}),
      });
      res = got.res;
      current = got.url;
      const status = res.statusCode ?? 0;
      if (status >= 500) throw new ServerError(status, res.statusMessage);
      if (status === 404 || status === 410)
        throw new StorageError(
          'NOT_FOUND',
          `${o.what}: the server answered ${status} ${res.statusMessage ?? ''} for ${shownUrl(current)}`,
        );
      if (offset === 0) {
        if (status !== 200)
          throw new StorageError(
            'SOURCE_UNAVAILABLE',
            `${o.what}: the server answered ${status} ${res.statusMessage ?? ''}`,
          );
        total = contentLength(res);
        validator = validatorOf(res);
        o.onTotal?.(total);
      } else {
        continuing(res, offset, total, validator);
      }
      for await (const chunk of res as AsyncIterable<Buffer>) {
        offset += chunk.length;
        if (total !== undefined && offset > total)
          throw new StorageError(
            'SOURCE_UNAVAILABLE',
            `${o.what}: the server sent more than the ${total} bytes it announced`,
          );
        yield chunk;
      }
      if (total === undefined || offset === total) return;
      failure = new Truncated(offset, total);
    } catch (err) {
      res?.destroy();
      if (o.signal.aborted || !transient(err)) throw classify(err, o.what, tries);
      // A connection that broke while the body came is a body cut short (DATA_LOSS if it stays so).
      const cut = res !== undefined && !(err instanceof ServerError) && total !== undefined && offset < total;
      failure = cut ? new Truncated(offset, total as number) : err;
    }
    if (o.budget.retries <= 0) throw classify(failure, o.what, tries);
    o.budget.retries -= 1;
    tries += 1;
    o.onRetry?.(describe(failure), offset);
    await clock.sleep(RETRY_DELAY_MS * 2 ** (tries - 2), o.signal);
  }
}

/** A 206 that continues at `offset` of the same file, or StartOver. */
function continuing(
  res: IncomingMessage,
  offset: number,
  total: number | undefined,
  validator: string | undefined,
): void {
  const status = res.statusCode ?? 0;
  if (status === 200) throw new StartOver('the server ignored the Range request and sent the whole file');
  if (status === 416) throw new StartOver('the server refused the Range request (416)');
  if (status !== 206) throw new StartOver(`the server answered ${status} to a Range request`);
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers['content-range'] ?? '');
  if (!m || Number(m[1]) !== offset)
    throw new StartOver(
      `the server sent ${res.headers['content-range'] ?? 'no Content-Range'} for bytes ${offset}-`,
    );
  if (total !== undefined && m[3] !== '*' && Number(m[3]) !== total)
    throw new StartOver(`the file changed size on the server (${total} → ${m[3]} bytes)`);
  const now = validatorOf(res);
  if (validator !== undefined && now !== undefined && now !== validator)
    throw new StartOver('the file changed on the server (its ETag differs)');
}

function contentLength(res: IncomingMessage): number | undefined {
  const v = res.headers['content-length'];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

/** A strong ETag, else Last-Modified: what If-Range may carry (weak ETags may not). */
function validatorOf(res: IncomingMessage): string | undefined {
  const etag = res.headers.etag;
  if (etag !== undefined && !etag.startsWith('W/')) return etag;
  return res.headers['last-modified'];
}

class ServerError extends Error {
  constructor(
    readonly status: number,
    statusMessage: string | undefined,
  ) {
    super(`the server answered ${status} ${statusMessage ?? ''}`.trim());
  }
}

class Truncated extends Error {
  constructor(
    readonly got: number,
    readonly total: number,
  ) {
    super(`the body ended after ${got} of its ${total} bytes`);
  }
}

function transient(err: unknown): boolean {
  if (err instanceof ServerError || err instanceof Truncated || err instanceof IdleTimeout) return true;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && TRANSIENT_CODES.has(code);
}

function describe(err: unknown): string {
  return oneLine(err instanceof Error ? err.message : String(err));
}

/** The error the import reports for `err`, the last failure after `tries` attempts. */
function classify(err: unknown, what: string, tries: number): Error {
  if (err instanceof StorageError || err instanceof StartOver) return err;
  if ((err as Error | undefined)?.name === 'AbortError') return err as Error;
  const after = tries > 1 ? ` (after ${tries} tries)` : '';
  if (err instanceof Truncated)
    return new StorageError('CHECKSUM_MISMATCH', `${what}: truncated: ${err.message}${after}`, {
      cause: err,
    });
  return new StorageError('SOURCE_UNAVAILABLE', `${what}: ${describe(err)}${after}`, { cause: err });
}
