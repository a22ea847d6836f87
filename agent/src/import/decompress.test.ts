import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { type Compression, sniffCompression } from './compression.js';
import { decompress } from './decompress.js';

/** 1 MiB of half random, half zero data: what disks look like. */
const DATA = Buffer.concat([randomBytes(512 * 1024), Buffer.alloc(512 * 1024)]);
/** Compressed by the real tools, as an uploader would have. */
const COMPRESSED: Record<Compression, Buffer> = {
  gzip: execFileSync('gzip', ['-c'], { input: DATA }),
  bzip2: execFileSync('bzip2', ['-c'], { input: DATA }),
  xz: execFileSync('xz', ['-c'], { input: DATA }),
};
const KINDS = Object.keys(COMPRESSED) as Compression[];

async function* chunked(data: Buffer, size = 7919, fail?: Error): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
  if (fail) throw fail;
}

async function collect(
  kind: Compression,
  input: AsyncIterable<Buffer>,
  signal = new AbortController().signal,
) {
  const out: Buffer[] = [];
  for await (const c of decompress(kind, input, { signal, what: 'cp image 7' })) out.push(c);
  return Buffer.concat(out);
}

describe('sniffCompression', () => {
  it.each(KINDS)('recognises %s by its magic bytes', (kind) => {
    expect(sniffCompression(COMPRESSED[kind].subarray(0, 6))).toBe(kind);
  });

  it.each([
    ['raw data', DATA.subarray(0, 6)],
    ['a qcow2 header', Buffer.from('QFI\xfb\0\0', 'latin1')],
    ['"BZh" without a block size', Buffer.from('BZhx', 'latin1')],
    ['too few bytes', Buffer.from([0x1f])],
  ])('leaves %s alone', (_t, head) => {
    expect(sniffCompression(head)).toBeUndefined();
  });
});

describe('decompress', () => {
  it.each(KINDS)('undoes %s fed in odd-sized chunks', async (kind) => {
    expect((await collect(kind, chunked(COMPRESSED[kind]))).equals(DATA)).toBe(true);
  });

  it('reads every member of a multi-member gzip file', async () => {
    const two = Buffer.concat([gzipSync(DATA.subarray(0, 1000)), gzipSync(DATA.subarray(1000, 5000))]);
    expect((await collect('gzip', chunked(two))).equals(DATA.subarray(0, 5000))).toBe(true);
  });

  it.each(KINDS)('corrupt %s data is BAD_IMAGE naming the compression', async (kind) => {
    const bad = Buffer.from(COMPRESSED[kind]);
    bad.fill(0x55, 40, 400);
    const err = await collect(kind, chunked(bad)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({
      reason: 'BAD_IMAGE',
      message: expect.stringContaining(`the ${kind} data is corrupt`) as unknown,
    });
  });

  it.each(KINDS)(
    "%s: an error of the download itself wins over the decompressor's complaint",
    async (kind) => {
      const cut = new StorageError('CHECKSUM_MISMATCH', 'truncated');
      const err = await collect(kind, chunked(COMPRESSED[kind].subarray(0, 20_000), 7919, cut)).catch(
        (e: unknown) => e,
      );
      expect(err).toBe(cut);
    },
  );

  it.each(KINDS)('%s: a consumer that stops early ends the decompression (no hang)', async (kind) => {
    const endless = async function* (): AsyncGenerator<Buffer> {
      for (;;) yield* chunked(COMPRESSED[kind]);
    };
    let got = 0;
    for await (const c of decompress(kind, endless(), { signal: new AbortController().signal, what: 'x' })) {
      got += c.length;
      if (got > 100_000) break;
    }
    expect(got).toBeGreaterThan(100_000);
  });
});
