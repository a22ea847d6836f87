import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFileServer, type FileServer } from './file-server.js';

let dir: string;
let server: FileServer;
const BODY = Buffer.from('0123456789abcdef');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'file-server-'));
  await writeFile(join(dir, 'image.raw'), BODY);
  await writeFile(join(tmpdir(), 'outside-file-server.txt'), 'secret');
  server = await startFileServer(dir);
});
afterAll(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
  await rm(join(tmpdir(), 'outside-file-server.txt'), { force: true });
});

describe('startFileServer', () => {
  it('serves a file of its directory with its length, on loopback', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const r = await fetch(`${server.url}/image.raw`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe(String(BODY.length));
    expect(Buffer.from(await r.arrayBuffer())).toEqual(BODY);
  });

  it('answers HEAD with the length and no body', async () => {
    const r = await fetch(`${server.url}/image.raw`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe(String(BODY.length));
    expect((await r.arrayBuffer()).byteLength).toBe(0);
  });

  it.each([
    ['bytes=10-', 'abcdef', 'bytes 10-15/16'],
    ['bytes=2-4', '234', 'bytes 2-4/16'],
  ])('serves the range %s', async (range, body, contentRange) => {
    const r = await fetch(`${server.url}/image.raw`, { headers: { range } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe(contentRange);
    expect(await r.text()).toBe(body);
  });

  it('refuses a range past the end with 416', async () => {
    const r = await fetch(`${server.url}/image.raw`, { headers: { range: 'bytes=16-' } });
    expect(r.status).toBe(416);
  });

  it.each([['/missing.raw'], ['/..%2Foutside-file-server.txt'], ['/']])(
    'answers 404 for %s',
    async (path) => {
      const r = await fetch(`${server.url}${path}`);
      expect(r.status).toBe(404);
    },
  );
});
