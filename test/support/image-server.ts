/**
 * A real HTTP(S) server on 127.0.0.1 (port 0) that serves registered files the way image servers
 * do, and misbehaves on request, for the tests of image registration (the agent's ImportImage and
 * ProbeImageSource, the coordinator's datastore cp/stat, the demo). It records every request.
 *
 *   const images = await startImageServer();            // or startImageServer({ tls: { cert, key } })
 *   const url = images.serve('/disk.qcow2', bytes);     // Range + ETag, like nginx
 *   images.serve('/cut', bytes, { scenario: 'truncated', cutAt: 4096 });
 *   images.requests('/disk.qcow2')                      // [{ method, range, ifRange, status }, ...]
 *   await images.close();
 *
 * Scenarios (RouteOptions.scenario):
 * - `range` (default): Content-Length, a strong ETag, Accept-Ranges; `Range: bytes=N-` / `N-M`
 *   answered 206 with Content-Range, unless an If-Range does not match the ETag (then 200, whole);
 * - `plain`: Content-Length only, Range ignored (always 200, the whole file);
 * - `chunked`: no Content-Length (chunked encoding), Range ignored;
 * - `truncated`: like `range`, but the server only ever has the first `cutAt` bytes: every response
 *   announces the full length, sends what it has up to `cutAt`, then closes the connection;
 * - `flaky`: the first GET is cut (the connection closed mid-body) after `cutAt` bytes; every later request is
 *   served like `range`, so a client can resume (or, with `resumable: false`, like `plain`);
 * - `stalled`: like `truncated`, but the connection then stays open with nothing more sent, as a
 *   hung server's would, until the client goes away (for cancellation: `started(path)` resolves
 *   once body bytes went out, and the download can never finish first).
 * `failFirst: n` answers the first n requests of a route with 503. Unregistered paths are 404;
 * `redirect(from, to)` answers `from` with a 302 to `to`.
 */
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export type Scenario = 'range' | 'plain' | 'chunked' | 'truncated' | 'flaky' | 'stalled';

export interface RouteOptions {
  scenario?: Scenario;
  /** truncated / flaky / stalled: body bytes sent before the cut or stall (default: half the file). */
  cutAt?: number;
  /** Answer the first n requests with 503 Service Unavailable. */
  failFirst?: number;
  /** flaky: whether the requests after the cut honour Range (default true). */
  resumable?: boolean;
}

export interface SeenRequest {
  method: string;
  path: string;
  range?: string;
  ifRange?: string;
  status: number;
}

export interface ImageServer {
  /** http://127.0.0.1:PORT (https:// with tls). */
  readonly origin: string;
  url(path: string): string;
  /** Registers `body` at `path` (replacing what was there) and returns its URL. */
  serve(path: string, body: Buffer, options?: RouteOptions): string;
  /** `from` answers 302 with Location `to` (a path of this server or a full URL); returns from's URL. */
  redirect(from: string, to: string): string;
  /** Every request so far, or those of one path, in order. */
  requests(path?: string): SeenRequest[];
  /** Resolves once a response of `path` has sent body bytes. */
  started(path: string): Promise<void>;
  close(): Promise<void>;
}

interface Route extends Required<Omit<RouteOptions, 'cutAt'>> {
  body: Buffer;
  etag: string;
  cutAt: number;
  served: number;
}

export async function startImageServer(
  options: { tls?: { cert: string | Buffer; key: string | Buffer } } = {},
): Promise<ImageServer> {
  const routes = new Map<string, Route>();
  const redirects = new Map<string, string>();
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const waiters = new Map<string, Array<() => void>>();
  const startedPaths = new Set<string>();

  const markStarted = (path: string): void => {
    startedPaths.add(path);
    for (const w of waiters.get(path) ?? []) w();
    waiters.delete(path);
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const record: SeenRequest = { method: req.method ?? 'GET', path, status: 0 };
    if (req.headers.range !== undefined) record.range = req.headers.range;
    if (typeof req.headers['if-range'] === 'string') record.ifRange = req.headers['if-range'];
    seen.push(record);
    const answer = (status: number, headers: Record<string, string | number> = {}): void => {
      record.status = status;
      res.writeHead(status, headers);
    };
    const target = redirects.get(path);
    if (target !== undefined) {
      answer(302, { location: target, 'content-length': 0 });
      res.end();
      return;
    }
    const route = routes.get(path);
    if (!route) {
      answer(404, { 'content-length': 9 });
      res.end('not found');
      return;
    }
    route.served += 1;
    if (route.served <= route.failFirst) {
      answer(503, { 'content-length': 4 });
      res.end('busy');
      return;
    }
    serveRoute(route, req, res, answer, path, markStarted);
  };

  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : http.createServer(handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  return {
    origin,
    url: (path) => `${origin}${path}`,
    serve(path, body, o = {}) {
      routes.set(path, {
        body,
        etag: `"${createHash('sha1').update(body).digest('hex').slice(0, 16)}"`,
        scenario: o.scenario ?? 'range',
        cutAt: o.cutAt ?? Math.floor(body.length / 2),
        failFirst: o.failFirst ?? 0,
        resumable: o.resumable ?? true,
        served: 0,
      });
      return `${origin}${path}`;
    },
    redirect(from, to) {
      redirects.set(from, to);
      return `${origin}${from}`;
    },
    requests: (path) => seen.filter((r) => path === undefined || r.path === path),
    started: (path) =>
      startedPaths.has(path)
        ? Promise.resolve()
        : new Promise((resolve) => waiters.set(path, [...(waiters.get(path) ?? []), resolve])),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function serveRoute(
  route: Route,
  req: IncomingMessage,
  res: ServerResponse,
  answer: (status: number, headers?: Record<string, string | number>) => void,
  path: string,
  started: (path: string) => void,
): void {
  const size = route.body.length;
  const { scenario } = route;
  const ranged =
    scenario === 'range' ||
    scenario === 'truncated' ||
    scenario === 'stalled' ||
    (scenario === 'flaky' && (route.resumable || route.served === 1));
  let start = 0;
  let end = size - 1;
  let partial = false;
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  const ifRange = req.headers['if-range'];
  if (ranged && m && (ifRange === undefined || ifRange === route.etag)) {
    start = Number(m[1]);
    end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
    if (start >= size) {
      answer(416, { 'content-range': `bytes */${size}`, 'content-length': 0 });
      res.end();
      return;
    }
    partial = true;
  }
  const headers: Record<string, string | number> = {};
  if (scenario !== 'chunked') headers['content-length'] = end - start + 1;
  if (ranged) Object.assign(headers, { etag: route.etag, 'accept-ranges': 'bytes' });
  if (partial) headers['content-range'] = `bytes ${start}-${end}/${size}`;
  answer(partial ? 206 : 200, headers);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const body = route.body.subarray(start, end + 1);
  const cutFirst = scenario === 'flaky' && route.served === 1;
  if (scenario === 'truncated' || scenario === 'stalled' || cutFirst) {
    const have = Math.max(0, Math.min(body.length, route.cutAt - start));
    started(path);
    // Stalled: the response stays open (close() destroys it if the client never goes away).
    if (scenario === 'stalled') {
      res.write(body.subarray(0, have));
      return;
    }
    // Cut: the connection ends before Content-Length bytes came (closed, not reset: a reset could
    // discard the bytes already sent before the client reads them, and the cut would move).
    res.write(body.subarray(0, have), () => res.socket?.destroy());
    return;
  }
  if (body.length > 0) started(path);
  res.end(body);
}
