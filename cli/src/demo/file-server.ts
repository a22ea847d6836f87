/**
 * A plain HTTP server on loopback that serves the files of one directory: the demo registers its
 * images from it with the datastore `cp` action, and the image registration benchmark downloads
 * from it (ours and OpenNebula's curl alike). Not for production: GET and HEAD with Content-Length,
 * a single `bytes=a-` or `bytes=a-b` Range (what a resumed download asks), 404 for anything else.
 *
 *   const server = await startFileServer(dir);
 *   fetch(`${server.url}/image.qcow2`);
 *   await server.stop();
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';

export interface FileServer {
  /** `http://127.0.0.1:<port>`; a file `name` of the directory is at `${url}/${name}`. */
  readonly url: string;
  stop(): Promise<void>;
}

export async function startFileServer(dir: string): Promise<FileServer> {
  const server = createServer((req, res) => {
    serve(dir, req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function serve(dir: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const name = decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/').slice(1);
  const size =
    (req.method === 'GET' || req.method === 'HEAD') && name !== '' && name === basename(name)
      ? await stat(join(dir, name)).then(
          (s) => (s.isFile() ? s.size : undefined),
          () => undefined,
        )
      : undefined;
  if (size === undefined) {
    res.writeHead(404).end();
    return;
  }
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  const start = range ? Number(range[1]) : 0;
  const end = range && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
  if (range && start >= size) {
    res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
    return;
  }
  res.writeHead(range ? 206 : 200, {
    'content-type': 'application/octet-stream',
    'content-length': String(end - start + 1),
    'accept-ranges': 'bytes',
    ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await pipeline(createReadStream(join(dir, name), { start, end, highWaterMark: 1024 * 1024 }), res);
}
