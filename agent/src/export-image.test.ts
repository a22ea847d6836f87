// ExportImage and the export listener, end to end: a real agent over mutual TLS on loopback, real
// qemu-img, and real curl fetching the URL exactly as OpenNebula's downloader.sh does.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { runTool } from '../../common/src/tools/run-tool.js';
import { MIB } from '../../common/src/units.js';
import {
  type ExportImageRequest,
  type ExportImageResponse,
  ImageFormat,
} from '../../proto/gen/onestorage/agent/v1/agent.js';
import { call, failure } from '../../test/support/agent/agent-fixture.js';
import { qemuImg, writePattern } from '../../test/support/agent/disk-testing.js';
import {
  curlRequest,
  ds,
  fetchLikeDownloader,
  md5Of,
  useExportAgent,
} from '../../test/support/agent/export-fixture.js';
import { useAgentServer } from '../../test/support/agent/server-test-fixture.js';

const { IMAGE_FORMAT_RAW: RAW, IMAGE_FORMAT_QCOW2: QCOW2 } = ImageFormat;
const URL_SHAPE = /^https:\/\/127\.0\.0\.1:(\d+)\/export\/([A-Za-z0-9_-]{43})\/(.+)$/;

const ctx = useExportAgent();
const disabled = useAgentServer();

function exportImage(req: Partial<ExportImageRequest>): Promise<ExportImageResponse> {
  return call(ctx.client.exportImage.bind(ctx.client), {
    source: '',
    format: RAW,
    ttlSeconds: 0,
    label: '',
    ...req,
  });
}

/** A raw image of random bytes in image datastore 1. */
function rawImage(name: string, bytes = 3 * MIB + 4096): Buffer {
  const data = randomBytes(bytes);
  writeFileSync(ctx.local(`1/${name}`), data);
  return data;
}

/** A standalone qcow2 in image datastore 1 with two written runs. */
async function qcow2Image(name: string): Promise<string> {
  const file = ctx.local(`1/${name}`);
  await qemuImg('create', '-q', '-f', 'qcow2', file, '4M');
  await writePattern(file, 'qcow2', 0x5a, 0, 64 * 1024);
  await writePattern(file, 'qcow2', 0xa5, MIB, 256 * 1024);
  return file;
}

/** A downloaded file's path in a scratch directory of the test. */
function downloadPath(name: string): string {
  const dir = join(ctx.base, 'downloads');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}

/** Temporaries in image datastore 1. */
function temporaries(): string[] {
  return readdirSync(ctx.local('1')).filter((n) => n.includes('.tmp-'));
}

describe('ExportImage over the export listener', () => {
  it('exports a raw image: curl as downloader.sh gets the same bytes, whose MD5 is the answer', async () => {
    const data = rawImage('raw1');
    const res = await exportImage({ source: ds('1/raw1'), format: RAW, label: 'image-7.raw' });
    const m = URL_SHAPE.exec(res.url);
    expect(m?.[1]).toBe(ctx.agent.exportAddress?.split(':')[1]);
    expect(m?.[3]).toBe('image-7.raw');
    expect(res).toMatchObject({
      md5: md5Of(data),
      sizeBytes: data.length,
      virtualSize: data.length,
      format: RAW,
    });
    const file = downloadPath('raw1');
    expect(await fetchLikeDownloader(res.url, file)).toEqual({ code: 0, stderr: '' });
    const got = readFileSync(file);
    expect(md5Of(got)).toBe(res.md5);
    expect(got.equals(data)).toBe(true);
    expect(temporaries()).toEqual([]);
  });

  it('exports a standalone qcow2 as it is: no copy is made, the bytes are the file itself', async () => {
    const source = await qcow2Image('q1');
    const res = await exportImage({ source: ds('1/q1'), format: QCOW2 });
    expect(temporaries()).toEqual([]);
    const bytes = readFileSync(source);
    expect(res).toMatchObject({
      md5: md5Of(bytes),
      sizeBytes: bytes.length,
      virtualSize: 4 * MIB,
      format: QCOW2,
    });
    expect(URL_SHAPE.exec(res.url)?.[3]).toBe('image.qcow2');
    const file = downloadPath('q1');
    expect((await fetchLikeDownloader(res.url, file)).code).toBe(0);
    expect(readFileSync(file).equals(bytes)).toBe(true);
  });

  it('answers HEAD with size, ETag and Accept-Ranges; one byte range with 206; past the end 416', async () => {
    const data = rawImage('raw2', 2 * MIB);
    const { url, md5 } = await exportImage({ source: ds('1/raw2'), format: RAW });
    const head = await curlRequest(url, ['--head']);
    expect(head.status).toBe(200);
    expect(head.headers).toMatchObject({
      'content-length': String(data.length),
      'accept-ranges': 'bytes',
      etag: `"${md5}"`,
      'content-type': 'application/octet-stream',
    });

    const part = await curlRequest(url, ['-r', '1000-1999']);
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 1000-1999/${data.length}`);
    expect(part.body.equals(data.subarray(1000, 2000))).toBe(true);

    const tail = await curlRequest(url, ['-H', 'Range: bytes=-100']);
    expect(tail.status).toBe(206);
    expect(tail.body.equals(data.subarray(data.length - 100))).toBe(true);

    // If-Range naming another version: the whole file, 200.
    const stale = await curlRequest(url, ['-r', '0-9', '-H', 'If-Range: "0123"']);
    expect([stale.status, stale.body.length]).toEqual([200, data.length]);

    const past = await curlRequest(url, ['-r', `${data.length}-`]);
    expect(past.status).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${data.length}`);
  });

  it('flattens a chain (SOURCE linking into its .snap, as after a local mvds); the copy goes at expiry', async () => {
    // The local TM's layout: .snap/0 standalone, .snap/1 an overlay naming "0", SOURCE -> .snap/1.
    mkdirSync(ctx.local('1/chain.snap'));
    const base = ctx.local('1/chain.snap/0');
    const top = ctx.local('1/chain.snap/1');
    await qemuImg('create', '-q', '-f', 'qcow2', base, '4M');
    await writePattern(base, 'qcow2', 0x11, 0, MIB);
    await qemuImg('create', '-q', '-f', 'qcow2', '-b', '0', '-F', 'qcow2', top);
    await writePattern(top, 'qcow2', 0x22, MIB / 2, MIB);
    symlinkSync('chain.snap/1', ctx.local('1/chain'));

    const res = await exportImage({ source: ds('1/chain'), format: QCOW2, ttlSeconds: 60 });
    expect(res).toMatchObject({ virtualSize: 4 * MIB, format: QCOW2 });
    const copies = temporaries();
    expect(copies).toHaveLength(1);
    expect(copies[0]).toMatch(/^\.chain\.tmp-host01-[0-9a-f]{12}$/);

    const file = downloadPath('chain.qcow2');
    expect((await fetchLikeDownloader(res.url, file)).code).toBe(0);
    const got = readFileSync(file);
    expect([md5Of(got), got.length]).toEqual([res.md5, res.sizeBytes]);
    const info = JSON.parse(await qemuImg('info', '-f', 'qcow2', '--output=json', file)) as Record<
      string,
      unknown
    >;
    expect(info['backing-filename']).toBeUndefined();
    expect(info['virtual-size']).toBe(4 * MIB);
    await runTool('qemu-img', ['compare', '-q', '-f', 'qcow2', '-F', 'qcow2', file, top]);
    // The chain itself is untouched.
    expect(JSON.parse(await qemuImg('info', '-U', '-f', 'qcow2', '--output=json', top))).toMatchObject({
      'backing-filename': '0',
    });

    ctx.clock.now += 59_000;
    expect((await curlRequest(res.url, ['--head'])).status).toBe(200);
    ctx.clock.now += 1_000;
    const expired = await curlRequest(res.url);
    expect(expired.status).toBe(404);
    expect(expired.body.toString()).toBe('not found\n');
    expect(temporaries()).toEqual([]);
    expect((await fetchLikeDownloader(res.url, downloadPath('late'))).code).toBe(22);
  });

  it('answers 404 alike for a token never issued, a malformed one and any other path; 405 for other methods', async () => {
    rawImage('raw3', 4096);
    const { url } = await exportImage({ source: ds('1/raw3'), format: RAW });
    const [, port, token] = URL_SHAPE.exec(url) ?? [];
    const origin = `https://127.0.0.1:${port}`;
    const other = randomBytes(32).toString('base64url');
    const refused = [
      `${origin}/export/${other}/image.raw`,
      `${origin}/export/${other}`,
      `${origin}/export/${token?.slice(0, 42)}`,
      `${origin}/export/${token}x`,
      `${origin}/export/`,
      `${origin}/`,
      `${origin}/etc/passwd`,
      `${origin}/export/${token}/a/b`,
    ];
    for (const u of refused) {
      const r = await curlRequest(u);
      expect([u, r.status, r.body.toString()]).toEqual([u, 404, 'not found\n']);
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const r = await curlRequest(url, ['-X', method]);
      expect([method, r.status, r.headers['allow']]).toEqual([method, 405, 'GET, HEAD']);
    }
    expect((await curlRequest(`${url}?x=1`)).status).toBe(200);
  });

  it('serves no other file than the one exported: not one renamed over it, not one written in place', async () => {
    rawImage('raw4', 8192);
    const replaced = await exportImage({ source: ds('1/raw4'), format: RAW });
    writeFileSync(ctx.local('1/.raw4.new'), randomBytes(8192));
    renameSync(ctx.local('1/.raw4.new'), ctx.local('1/raw4'));
    const r1 = await curlRequest(replaced.url);
    expect([r1.status, r1.body.toString()]).toEqual([410, 'gone\n']);
    expect((await fetchLikeDownloader(replaced.url, downloadPath('raw4'))).code).toBe(22);

    const inPlace = await exportImage({ source: ds('1/raw4'), format: RAW });
    expect((await curlRequest(inPlace.url, ['--head'])).status).toBe(200);
    writeFileSync(ctx.local('1/raw4'), randomBytes(8192), { flag: 'r+' });
    expect((await curlRequest(inPlace.url)).status).toBe(410);
    const line = await ctx.waitForLog((l) => l['status'] === 410 && l['why'] !== undefined);
    expect(String(line['why'])).toMatch(/changed since ExportImage|written since it was exported/);
  });

  it('never writes a token to its log: the export and every request are named by the export id', async () => {
    rawImage('raw5', 4096);
    const res = await exportImage({ source: ds('1/raw5'), format: RAW });
    const token = URL_SHAPE.exec(res.url)?.[2] ?? '';
    expect((await fetchLikeDownloader(res.url, downloadPath('raw5'))).code).toBe(0);
    const exported = await ctx.waitForLog(
      (l) => l['msg'] === 'image exported' && l['source'] === ds('1/raw5'),
    );
    const id = exported['exportId'];
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    const served = await ctx.waitForLog((l) => l['msg'] === 'export request served' && l['exportId'] === id);
    expect(served).toMatchObject({ method: 'GET', status: 200, bytes: 4096, source: ds('1/raw5') });
    expect(ctx.logText()).not.toContain(token);
    expect(ctx.logText()).not.toContain(token.slice(0, 16));
  });
});

describe('ExportImage without an export listener', () => {
  it('is FAILED_PRECONDITION (EXPORT_DISABLED), naming the setting, before touching the image', async () => {
    const f = await failure(
      call(disabled.client.exportImage.bind(disabled.client), {
        source: '/var/lib/one/datastores/1/none',
        format: RAW,
        ttlSeconds: 0,
        label: '',
      }),
    );
    expect(f).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, reason: 'EXPORT_DISABLED' });
    expect(f.message).toBe(
      'export host01:/var/lib/one/datastores/1/none: this agent has no export listener (set export.listen)',
    );
  });
});
