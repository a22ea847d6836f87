import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { EXPORT_PATH_PREFIX } from '../../../common/src/export-tokens.js';
import type { Logger } from '../../../common/src/log.js';
import type { TlsMaterial } from '../../../common/src/tls.js';
import { MIB } from '../../../common/src/units.js';
import { openVerifiedFile } from '../transfer/verified-open.js';
import { byteRange } from './byte-range.js';
import type { ExportEntry, ExportRegistry } from './export-registry.js';

/** Connections open at once; one more is closed at accept. A market import makes one or two. */
export const MAX_EXPORT_CONNECTIONS = 64;
/** Read size of a served file. */
const READ_CHUNK_BYTES = MIB;
const ALLOWED_METHODS = 'GET, HEAD';
/** How much of a client's Range header a log line quotes. */
const LOGGED_RANGE_LENGTH = 64;
/** `/export/<token>` or `/export/<token>/<name>`; a query is ignored. */
const TARGET = new RegExp(`^${EXPORT_PATH_PREFIX}([^/?]+)(?:/[^/?]*)?(?:\\?.*)?$`);

export interface ExportServerOptions {
  /** The agent's own certificate and key; no client certificate is asked for. */
  tls: TlsMaterial;
  registry: ExportRegistry;
  logger: Logger;
  /** Told the body bytes of each response (the agent's metrics). */
  onServed?: (bytes: number) => void;
}

/** How one request ended, for its log line. */
interface Outcome {
  status: number;
  entry?: ExportEntry;
  bytes?: number;
  range?: string | undefined;
  why?: string;
}

/**
 * The export listener (docs/image-datastore.md#export-for-marketplaces): https with the agent's
 * certificate, read-only, `GET`/`HEAD /export/<token>[/<name>]` with a single byte range. An
 * unknown, malformed or expired token is a plain 404, the same for all three; the file is opened
 * and proven to be the one exported (same device, inode, size and modification time) before a
 * byte is sent, else 410. Every other method is 405. Each request is logged with the export's id,
 * never its token or the URL.
 */
export class ExportServer {
  private readonly server: Server;

  constructor(private readonly opts: ExportServerOptions) {
    this.server = createServer(
      { cert: opts.tls.cert, key: opts.tls.key, requestCert: false, minVersion: 'TLSv1.2' },
      (req, res) => void this.handle(req, res),
    );
    this.server.maxConnections = MAX_EXPORT_CONNECTIONS;
  }

  /** Listens on host:port (port 0: any free port) and returns the port bound. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: host.replace(/^\[(.*)\]$/, '$1'), port }, () => {
        this.server.off('error', reject);
        // Later errors (an accept that fails for lack of descriptors) are logged, never thrown.
        this.server.on('error', (err) => this.opts.logger.warn({ err }, 'export listener error'));
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops listening and cuts the downloads still running. */
  close(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    // Read now: once the response is done the socket may be gone.
    const remote = req.socket.remoteAddress;
    let outcome: Outcome;
    try {
      outcome = await this.answer(req, res);
    } catch (err) {
      outcome = { status: res.headersSent ? res.statusCode : 500, why: describe(err) };
      if (res.headersSent) res.destroy();
      else plain(res, 500, 'internal error');
    }
    const { entry } = outcome;
    if (outcome.bytes) this.opts.onServed?.(outcome.bytes);
    const line = {
      method: req.method,
      status: outcome.status,
      ms: Math.round(performance.now() - started),
      remote,
      ...(entry ? { exportId: entry.id, source: entry.source } : {}),
      ...(outcome.range !== undefined ? { range: outcome.range.slice(0, LOGGED_RANGE_LENGTH) } : {}),
      ...(outcome.bytes !== undefined ? { bytes: outcome.bytes } : {}),
      ...(outcome.why !== undefined ? { why: outcome.why } : {}),
    };
    if (outcome.status < 400) this.opts.logger.info(line, 'export request served');
    else this.opts.logger.warn(line, 'export request refused');
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<Outcome> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', ALLOWED_METHODS);
      return plain(res, 405, 'method not allowed');
    }
    const token = TARGET.exec(req.url ?? '')?.[1];
    await this.opts.registry.sweep();
    const entry = token === undefined ? undefined : this.opts.registry.find(token);
    // Unknown, malformed and expired tokens are answered alike: nothing tells them apart.
    if (!entry) return plain(res, 404, 'not found');
    let opened: Awaited<ReturnType<typeof openVerifiedFile>>;
    try {
      opened = await openVerifiedFile(entry.path, entry.source, entry.identity, 'ExportImage');
    } catch (err) {
      return { ...plain(res, 410, 'gone'), entry, why: describe(err) };
    }
    const { fh } = opened;
    if (opened.size !== entry.size || opened.mtimeNs !== entry.mtimeNs) {
      await fh.close();
      return { ...plain(res, 410, 'gone'), entry, why: 'the file was written since it was exported' };
    }
    const etag = `"${entry.md5}"`;
    // If-Range naming another version asks for the whole file (RFC 9110, section 13.1.5).
    const ifRange = req.headers['if-range'];
    const rangeHeader = ifRange === undefined || ifRange === etag ? req.headers.range : undefined;
    const range = byteRange(rangeHeader, entry.size);
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('ETag', etag);
    res.setHeader('Cache-Control', 'no-store');
    if (range.kind === 'unsatisfiable') {
      await fh.close();
      res.setHeader('Content-Range', `bytes */${entry.size}`);
      return { ...plain(res, 416, 'range not satisfiable'), entry, range: rangeHeader };
    }
    const start = range.kind === 'part' ? range.start : 0;
    const end = range.kind === 'part' ? range.end : entry.size - 1;
    const status = range.kind === 'part' ? 206 : 200;
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', String(end - start + 1));
    if (range.kind === 'part') res.setHeader('Content-Range', `bytes ${start}-${end}/${entry.size}`);
    const shown = range.kind === 'part' ? { range: rangeHeader } : {};
    if (req.method === 'HEAD' || entry.size === 0) {
      await fh.close();
      res.end();
      return { status, entry, bytes: 0, ...shown };
    }
    const body = fh.createReadStream({ start, end, highWaterMark: READ_CHUNK_BYTES });
    try {
      await pipeline(body, res);
      return { status, entry, bytes: body.bytesRead, ...shown };
    } catch (err) {
      return { status, entry, bytes: body.bytesRead, ...shown, why: `cut short: ${describe(err)}` };
    }
  }
}

/** A short text answer. */
function plain(res: ServerResponse, status: number, text: string): Outcome {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain');
  res.setHeader('Cache-Control', 'no-store');
  res.end(`${text}\n`);
  return { status };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
