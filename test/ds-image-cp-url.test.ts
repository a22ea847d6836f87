import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stack } from '../cli/src/demo/stack.js';
import { MIB } from '../common/src/units.js';
import { bytesOf, compressed, qcow2Disk, rawDisk } from './support/agent/import-images.js';
import {
  actionData,
  statImage,
  type DatastoreXmlOptions,
  type ImageXmlOptions,
} from './support/ds-action-data.js';
import {
  dsAction,
  expectFailure,
  expectSourceName,
  expectSuccess,
  infoLines,
  storedFormat,
} from './support/ds-image-stack.js';
import { layout } from './support/files.js';
import { startImageServer, type ImageServer } from './support/image-server.js';

// cp and stat of http:// images through the shims: a real HTTP server on 127.0.0.1, real agents.
// The image is downloaded by the agent where it lands (a BRIDGE_LIST host for a bridged datastore),
// checked, decompressed and detected there; a failure leaves nothing behind.
const FE_DS = 1;
const BRIDGED_DS = 2; // BRIDGE_LIST host01
const SHARED_DS = 3; // BRIDGE_LIST host01 host02, one directory both mount
let work: string;
let stack: Stack;
let images: ImageServer;
let raw: Buffer;
let qcow2: Buffer;
let chained: Buffer;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ds-url-'));
  raw = rawDisk(4);
  qcow2 = bytesOf(await qcow2Disk(work, 'disk.qcow2', 8));
  await qcow2Disk(work, 'base.qcow2', 8);
  chained = bytesOf(await qcow2Disk(work, 'top.qcow2', 8, '-b', join(work, 'base.qcow2'), '-F', 'qcow2'));
  images = await startImageServer();
  const shared = join(work, 'shared');
  stack = await Stack.start({
    hosts: ['frontend', 'host01', 'host02'],
    hostDirs: { host01: shared, host02: shared },
  });
});

afterAll(async () => {
  await stack?.stop();
  await images?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const base = (ds: number): string => `/var/lib/one/datastores/${ds}`;
const BRIDGES: Record<number, string> = { [BRIDGED_DS]: 'host01', [SHARED_DS]: 'host01 host02' };
const datastore = (ds: number, template: Record<string, string> = {}): DatastoreXmlOptions => ({
  id: ds,
  template: { ...template, ...(BRIDGES[ds] ? { BRIDGE_LIST: BRIDGES[ds] } : {}) },
});
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

async function cp(
  id: number,
  path: string,
  ds = FE_DS,
  image: ImageXmlOptions = {},
  template: Record<string, string> = {},
): Promise<{ source: string; format: string }> {
  const before = Date.now();
  const r = await dsAction(
    stack,
    'cp',
    id,
    actionData({ image: { id, path, ...image }, datastore: datastore(ds, template) }),
  );
  const out = expectSuccess(r);
  expect(infoLines(r)).toContain(`Downloading image ${path} to the image repository`);
  const m = /^(\S+) (raw|qcow2)\n$/.exec(out);
  expect(m, out).not.toBeNull();
  expectSourceName(m?.[1] as string, base(ds), id, before, Date.now());
  return { source: m?.[1] as string, format: m?.[2] as string };
}

describe('cp of an http URL', () => {
  it.each([
    ['plain', (b: Buffer) => b],
    ['gzip', (b: Buffer) => compressed('gzip', b)],
    ['xz', (b: Buffer) => compressed('xz', b)],
    ['bzip2', (b: Buffer) => compressed('bzip2', b)],
  ])('a raw image, %s: registered decompressed, byte for byte', async (kind, encode) => {
    const url = images.serve(`/raw.${kind}`, encode(raw));
    const id = 70 + ['plain', 'gzip', 'xz', 'bzip2'].indexOf(kind);
    const { source, format } = await cp(id, url);
    expect(format).toBe('raw');
    expect(md5(readFileSync(stack.localPath('frontend', source)))).toBe(md5(raw));
  });

  it('a qcow2 image: registered as qcow2, with its MD5 checked over the bytes fetched', async () => {
    const gz = compressed('gzip', qcow2);
    const url = images.serve('/disk.qcow2.gz', gz);
    const { source, format } = await cp(74, url, FE_DS, { template: { MD5: md5(gz).toUpperCase() } });
    expect(format).toBe('qcow2');
    expect(md5(readFileSync(stack.localPath('frontend', source)))).toBe(md5(qcow2));
  });

  it('converted to DRIVER, and stored as fetched with NO_DECOMPRESS=yes in a file datastore', async () => {
    const url = images.serve('/raw-for-qcow2', raw);
    const converted = await cp(75, url, FE_DS, {}, { DRIVER: 'qcow2' });
    expect(converted.format).toBe('qcow2');
    expect(storedFormat(stack.localPath('frontend', converted.source))).toBe('qcow2');
    const gz = compressed('gzip', raw);
    const decompressed = await cp(76, images.serve('/kernel.gz', gz), 4);
    expect(decompressed.format).toBe('raw');
    expect(md5(readFileSync(stack.localPath('frontend', decompressed.source)))).toBe(md5(raw));
    const fileDs = await dsAction(
      stack,
      'cp',
      77,
      actionData({ image: { id: 77, path: images.url('/kernel.gz') }, datastore: { id: 5, type: 2 } }),
    );
    const stored = expectSuccess(fileDs).split(' ')[0] as string;
    expect(md5(readFileSync(stack.localPath('frontend', stored)))).toBe(md5(gz));
  });

  it('downloaded by the bridge the image lands on, not by the front-end', async () => {
    const url = images.serve('/bridged.qcow2', qcow2);
    const { source } = await cp(78, url, BRIDGED_DS);
    expect(md5(readFileSync(stack.localPath('host01', source)))).toBe(md5(qcow2));
    expect(existsSync(stack.localPath('frontend', base(BRIDGED_DS)))).toBe(false);
  });

  it('into a datastore its bridges share: any bridge that answers serves it later', async () => {
    const url = images.serve('/shared.qcow2', qcow2);
    const id = 79; // 79 % 2: host02
    const { source } = await cp(id, url, SHARED_DS);
    await stack.stopAgent('host02');
    try {
      const r = await dsAction(
        stack,
        'rm',
        id,
        actionData({ image: { id, source }, datastore: datastore(SHARED_DS) }),
      );
      expectSuccess(r);
    } finally {
      await stack.startAgent('host02');
    }
    expect(existsSync(stack.localPath('host01', source))).toBe(false);
  });

  it.each([
    ['a qcow2 with a backing file', () => images.serve('/chained.qcow2', chained), () => ({}), /BAD_IMAGE/],
    [
      'a truncated body',
      () => images.serve('/cut', raw, { scenario: 'truncated', cutAt: MIB }),
      () => ({}),
      /./,
    ],
    ['a 404', () => images.url('/missing.img'), () => ({}), /NOT_FOUND/],
    [
      'an MD5 mismatch',
      () => images.serve('/md5', raw),
      (): ImageXmlOptions => ({ template: { MD5: md5(qcow2) } }),
      /CHECKSUM_MISMATCH/,
    ],
  ])('refuses %s in one line, leaving nothing', async (_what, url, image, reason) => {
    for (const ds of [FE_DS, BRIDGED_DS]) {
      const host = ds === FE_DS ? 'frontend' : 'host01';
      const before = layout(stack.localPath(host, base(ds)));
      const r = await dsAction(
        stack,
        'cp',
        80,
        actionData({ image: { id: 80, path: url(), ...image() }, datastore: datastore(ds) }),
      );
      expectFailure(r, /^cp failed: .*\bimage 80\b/);
      expect(r.stderr).toMatch(new RegExp(`^ERROR: cp: ${reason.source}`, 'm'));
      expect(layout(stack.localPath(host, base(ds)))).toEqual(before);
    }
  });
});

describe('stat of an http URL', () => {
  const stat = (url: string) => dsAction(stack, 'stat', 21, actionData({ image: statImage(url) }));

  it('prints the virtual size of a qcow2 (compressed or not) and the length of a raw image', async () => {
    expect(expectSuccess(await stat(images.serve('/s.qcow2', qcow2)))).toBe('8\n');
    expect(expectSuccess(await stat(images.serve('/s.qcow2.xz', compressed('xz', qcow2))))).toBe('8\n');
    expect(expectSuccess(await stat(images.serve('/s.raw', Buffer.alloc(MIB + 1, 1))))).toBe('2\n');
  });

  it('fails in one line for a 404 and for a compressed raw image it cannot measure', async () => {
    expectFailure(await stat(images.url('/nothing')), /^stat failed: .*\/nothing/);
    const gz = await stat(images.serve('/s.raw.gz', compressed('gzip', raw)));
    expectFailure(gz, /^stat failed: /);
    expect(gz.stderr).toMatch(/^ERROR: stat: BAD_IMAGE /m);
  });
});
