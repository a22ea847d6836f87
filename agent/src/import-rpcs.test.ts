import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../../common/src/tools/run-tool.js';
import { ImageFormat, type ImportImageRequest } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { call, failure } from '../../test/support/agent/agent-fixture.js';
import { MIB } from '../../test/support/agent/disk-testing.js';
import {
  bytesOf,
  compressed,
  convertedDisk,
  importRequest,
  qcow2Disk,
  rawDisk,
} from '../../test/support/agent/import-images.js';
import { ds, useImportTestbed } from '../../test/support/agent/import-testbed.js';

/**
 * ImportImage from http(s) URLs through a real agent over mutual TLS, from a real HTTP server on
 * loopback: formats, compressions, checksums, conversions, sparseness, and every refusal leaving
 * nothing behind (docs/image-datastore.md#registering-an-image-cp-on-the-agent).
 */
const t = useImportTestbed();
const { INVALID_ARGUMENT, NOT_FOUND, DATA_LOSS } = grpc.status;
const RAW = rawDisk(4);
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex');
let work: string;
let qcow2: string;

beforeAll(async () => {
  work = join(t.base, 'work');
  mkdirSync(work);
  qcow2 = await qcow2Disk(work, 'disk.qcow2');
});

function importImage(req: Partial<ImportImageRequest>) {
  return call(t.client.importImage.bind(t.client), importRequest(req));
}

/** The refusal left nothing: no destination, no temporary, and no directory the call made. */
async function expectNothingLeft(rel: string): Promise<void> {
  expect(existsSync(t.local(rel))).toBe(false);
  expect((await t.entries('1')).filter((n) => n.includes('.tmp-'))).toEqual([]);
}

const allocated = (rel: string): number => statSync(t.local(rel)).blocks * 512;

describe('ImportImage from http(s)', () => {
  it('registers a raw image: the same bytes, holes where the zeros were, the MD5 of what was fetched', async () => {
    const url = t.images.serve('/raw.img', RAW);
    const r = await importImage({ destination: ds('1/raw'), url, limitBytesPerSecond: 64 * MIB });
    expect(r).toEqual({
      format: ImageFormat.IMAGE_FORMAT_RAW,
      virtualSize: RAW.length,
      actualSize: allocated('1/raw'),
      fetchedBytes: RAW.length,
      md5: md5(RAW),
    });
    expect(readFileSync(t.local('1/raw')).equals(RAW)).toBe(true);
    expect(r.actualSize).toBeLessThan(RAW.length / 4);
    await t.logged((l) => l['msg'] === 'import fetched' && l['source'] === url);
  });

  it.each(['gzip', 'bzip2', 'xz'] as const)(
    'decompresses %s (made by the real tool); the MD5 covers the compressed bytes',
    async (kind) => {
      const packed = compressed(kind, RAW);
      const url = t.images.serve(`/raw.${kind}`, packed);
      const r = await importImage({ destination: ds(`1/${kind}`), url, md5: md5(packed) });
      expect(r).toMatchObject({
        format: ImageFormat.IMAGE_FORMAT_RAW,
        virtualSize: RAW.length,
        fetchedBytes: packed.length,
        md5: md5(packed),
      });
      expect(readFileSync(t.local(`1/${kind}`)).equals(RAW)).toBe(true);
    },
  );

  it('no_decompress stores the compressed bytes as a raw image', async () => {
    const packed = compressed('gzip', RAW);
    const url = t.images.serve('/kept.gz', packed);
    await importImage({ destination: ds('1/kept'), url, noDecompress: true });
    expect(readFileSync(t.local('1/kept')).equals(packed)).toBe(true);
  });

  it('registers a qcow2 as qcow2: qemu-img compare finds it identical, and it stays sparse', async () => {
    const url = t.images.serve('/disk.qcow2', bytesOf(qcow2));
    const r = await importImage({ destination: ds('1/qcow2'), url });
    expect(r).toMatchObject({ format: ImageFormat.IMAGE_FORMAT_QCOW2, virtualSize: 4 * MIB });
    await runTool('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', qcow2, t.local('1/qcow2')]);
    expect(r.actualSize).toBeLessThanOrEqual(statSync(qcow2).blocks * 512);
    expect(r.actualSize).toBeLessThan(r.virtualSize / 2);
  });

  it('a gzip-compressed qcow2 is decompressed, then kept as qcow2', async () => {
    const url = t.images.serve('/disk.qcow2.gz', compressed('gzip', bytesOf(qcow2)));
    const r = await importImage({ destination: ds('1/qcow2gz'), url });
    expect(r.format).toBe(ImageFormat.IMAGE_FORMAT_QCOW2);
    await runTool('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', qcow2, t.local('1/qcow2gz')]);
  });

  it.each([
    ['a backing file', ['-b', 'base.raw', '-F', 'raw'], /names a backing file/],
    ['an external data file', ['-o', 'data_file=DATA_FILE'], /external data file/],
  ])(
    'refuses a qcow2 with %s (BAD_IMAGE): nothing at the destination, no temporary',
    async (title, args, why) => {
      await runTool('qemu-img', ['create', '-q', '-f', 'raw', join(work, 'base.raw'), '4M']);
      const opts = args.map((a) => a.replace('DATA_FILE', join(work, 'ext.data')));
      const file = await qcow2Disk(work, `bad-${title.length}.qcow2`, 4, ...opts);
      const url = t.images.serve(`/bad-${title.length}.qcow2`, bytesOf(file));
      const rel = `1/new-${title.length}/img`;
      const f = await failure(importImage({ destination: ds(rel), url }));
      expect(f).toMatchObject({ code: INVALID_ARGUMENT, reason: 'BAD_IMAGE' });
      expect(f.message).toMatch(why);
      expect(f.message).toContain('image 7');
      await expectNothingLeft(rel);
      // The directory the call made for the destination is gone again.
      expect(existsSync(t.local(`1/new-${title.length}`))).toBe(false);
    },
  );

  it('checks md5 and sha1, in either case, and both when both are given', async () => {
    const url = t.images.serve('/sums.img', RAW);
    for (const sums of [
      { md5: md5(RAW) },
      { md5: md5(RAW).toUpperCase() },
      { sha1: sha1(RAW) },
      { md5: md5(RAW), sha1: sha1(RAW).toUpperCase() },
    ])
      expect((await importImage({ destination: ds('1/sums'), url, ...sums })).md5).toBe(md5(RAW));
  });

  it.each([
    ['a wrong md5', { md5: '0'.repeat(32) }, /MD5 mismatch: expected 0{32}, got [0-9a-f]{32}/],
    ['a right md5 and a wrong sha1', { md5: 'MD5', sha1: 'f'.repeat(40) }, /SHA1 mismatch: expected f{40}/],
  ])('%s is DATA_LOSS (CHECKSUM_MISMATCH) and leaves nothing', async (_t, sums, message) => {
    const url = t.images.serve('/sums2.img', RAW);
    const f = await failure(
      importImage({
        destination: ds('1/sums2'),
        url,
        ...sums,
        md5: sums.md5 === 'MD5' ? md5(RAW) : sums.md5,
      }),
    );
    expect(f).toMatchObject({ code: DATA_LOSS, reason: 'CHECKSUM_MISMATCH' });
    expect(f.message).toMatch(message);
    await expectNothingLeft('1/sums2');
  });

  it('a body cut short of its Content-Length is DATA_LOSS after the retries; nothing is left', async () => {
    const url = t.images.serve('/cut.img', RAW, { scenario: 'truncated', cutAt: MIB });
    const f = await failure(importImage({ destination: ds('1/cut'), url }));
    expect(f).toMatchObject({ code: DATA_LOSS, reason: 'CHECKSUM_MISMATCH' });
    expect(f.message).toMatch(/truncated: the body ended after 1048576 of its 4194304 bytes/);
    expect(t.images.requests('/cut.img')).toHaveLength(4);
    await expectNothingLeft('1/cut');
  });

  it('resumes after the connection is cut: the server saw a Range request from where it stopped', async () => {
    const url = t.images.serve('/flaky.img', RAW, { scenario: 'flaky', cutAt: MIB + 123 });
    const r = await importImage({ destination: ds('1/flaky'), url, md5: md5(RAW) });
    expect(r.fetchedBytes).toBe(RAW.length);
    const seen = t.images.requests('/flaky.img');
    expect(seen.map((s) => s.status)).toEqual([200, 206]);
    expect(seen[1]?.range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(readFileSync(t.local('1/flaky')).equals(RAW)).toBe(true);
  });

  it('starts over from the first byte when the server ignores the Range request of a resume', async () => {
    const url = t.images.serve('/norange.img', RAW, { scenario: 'flaky', cutAt: MIB, resumable: false });
    const r = await importImage({ destination: ds('1/norange'), url, md5: md5(RAW) });
    expect(r).toMatchObject({ fetchedBytes: RAW.length, md5: md5(RAW) });
    // Cut, then a Range request answered with the whole file (dropped), then a fresh download.
    expect(t.images.requests('/norange.img').map((s) => [s.status, s.range !== undefined])).toEqual([
      [200, false],
      [200, true],
      [200, false],
    ]);
    expect(readFileSync(t.local('1/norange')).equals(RAW)).toBe(true);
    await t.logged((l) => l['msg'] === 'import starts over from the first byte');
  });

  it('a 404 is NOT_FOUND naming the URL', async () => {
    const url = t.images.url('/nothing-here.qcow2');
    const f = await failure(importImage({ destination: ds('1/404'), url }));
    expect(f).toMatchObject({ code: NOT_FOUND, reason: 'NOT_FOUND' });
    expect(f.message).toContain(url);
    await expectNothingLeft('1/404');
  });

  it.each(['ssh://host/var/tmp/x', 's3://bucket/key', 'lxd://images/x', 'rbd://pool/img', 'ftp://h/x'])(
    'refuses the unsupported URL %s, naming its scheme',
    async (url) => {
      const f = await failure(importImage({ destination: ds('1/scheme'), url }));
      expect(f).toMatchObject({ code: INVALID_ARGUMENT, reason: 'INVALID_ARGUMENT' });
      expect(f.message).toContain(`scheme "${url.split(':')[0] ?? ''}" is not supported`);
    },
  );

  it('a cancelled call stops the download and leaves nothing', async () => {
    const url = t.images.serve('/stalled.img', RAW, { scenario: 'stalled' });
    const rel = '1/slowdir/img';
    const pending = new Promise<unknown>((resolve) => {
      const c = t.client.importImage(importRequest({ destination: ds(rel), url, label: 'image 9' }), (err) =>
        resolve(err),
      );
      void t.images.started('/stalled.img').then(() => c.cancel());
    });
    expect(await pending).toMatchObject({ code: grpc.status.CANCELLED });
    const line = await t.logged(
      (l) => l['msg'] === 'image import failed, nothing left' && l['destination'] === ds(rel),
    );
    expect(line).toMatchObject({ cancelled: true });
    await expectNothingLeft(rel);
    expect(existsSync(t.local('1/slowdir'))).toBe(false);
  });

  it('converts qcow2 to raw and raw to qcow2 (convert_to), contents unchanged', async () => {
    const toRaw = await importImage({
      destination: ds('1/as-raw'),
      url: t.images.serve('/c.qcow2', bytesOf(qcow2)),
      convertTo: ImageFormat.IMAGE_FORMAT_RAW,
    });
    expect(toRaw).toMatchObject({ format: ImageFormat.IMAGE_FORMAT_RAW, virtualSize: 4 * MIB });
    await runTool('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', qcow2, t.local('1/as-raw')]);
    const toQcow2 = await importImage({
      destination: ds('1/as-qcow2'),
      url: t.images.serve('/c.raw', RAW),
      convertTo: ImageFormat.IMAGE_FORMAT_QCOW2,
    });
    expect(toQcow2).toMatchObject({ format: ImageFormat.IMAGE_FORMAT_QCOW2, virtualSize: RAW.length });
    await runTool('qemu-img', [
      'compare',
      '-f',
      'qcow2',
      '-F',
      'raw',
      t.local('1/as-qcow2'),
      t.local('1/raw'),
    ]);
    expect((await t.entries('1')).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('stores a vmdk only converted: refused without convert_to, converted with it', async () => {
    const vmdk = await convertedDisk(work, qcow2, 'qcow2', 'disk.vmdk', 'vmdk');
    const url = t.images.serve('/disk.vmdk', bytesOf(vmdk));
    const f = await failure(importImage({ destination: ds('1/vmdk'), url }));
    expect(f).toMatchObject({ code: INVALID_ARGUMENT, reason: 'BAD_IMAGE' });
    expect(f.message).toMatch(/it is a vmdk image, which is stored only converted/);
    await expectNothingLeft('1/vmdk');
    const r = await importImage({
      destination: ds('1/vmdk'),
      url,
      convertTo: ImageFormat.IMAGE_FORMAT_QCOW2,
    });
    expect(r).toMatchObject({ format: ImageFormat.IMAGE_FORMAT_QCOW2, virtualSize: 4 * MIB });
    await runTool('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', qcow2, t.local('1/vmdk')]);
  });

  it('SPARSE=no (sparse false) gives a fully allocated file', async () => {
    const r = await importImage({
      destination: ds('1/full'),
      url: t.images.serve('/full.img', RAW),
      sparse: false,
    });
    expect(r.actualSize).toBeGreaterThanOrEqual(RAW.length);
    expect(readFileSync(t.local('1/full')).equals(RAW)).toBe(true);
  });

  it('plain_file stores the bytes as they are, whatever they look like, and reports RAW', async () => {
    const qcow2Bytes = bytesOf(qcow2);
    const r = await importImage({
      destination: ds('1/kernel'),
      url: t.images.serve('/vmlinuz', qcow2Bytes),
      plainFile: true,
      noDecompress: true,
    });
    expect(r).toMatchObject({ format: ImageFormat.IMAGE_FORMAT_RAW, virtualSize: qcow2Bytes.length });
    expect(readFileSync(t.local('1/kernel')).equals(qcow2Bytes)).toBe(true);
  });

  it.each([
    [
      'an archive',
      () => Buffer.concat([Buffer.alloc(257), Buffer.from('ustar\0'), Buffer.alloc(4096)]),
      /archives are not supported/,
    ],
    ['an empty file', () => Buffer.alloc(0), /it is empty/],
  ])('refuses %s (BAD_IMAGE)', async (title, body, why) => {
    const f = await failure(
      importImage({ destination: ds('1/refused'), url: t.images.serve(`/r${title.length}`, body()) }),
    );
    expect(f).toMatchObject({ code: INVALID_ARGUMENT, reason: 'BAD_IMAGE' });
    expect(f.message).toMatch(why);
    await expectNothingLeft('1/refused');
  });

  it('a repeat replaces the image with the same bytes', async () => {
    const url = t.images.serve('/again.img', RAW);
    const first = await importImage({ destination: ds('1/again'), url });
    const second = await importImage({ destination: ds('1/again'), url });
    expect(second).toEqual(first);
    expect(readFileSync(t.local('1/again')).equals(RAW)).toBe(true);
  });
});
