import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HOLE_BLOCK_BYTES, writeSparse } from './sparse-writer.js';

const dir = mkdtempSync(join(tmpdir(), 'sparse-writer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MIB = 1024 * 1024;

/** 8 MiB: data at the start, in the middle (unaligned) and at the very end; zeros elsewhere. */
function image(): Buffer {
  const b = Buffer.alloc(8 * MIB);
  randomBytes(100_000).copy(b, 0);
  randomBytes(3).copy(b, 4 * MIB + 4094); // across a block boundary
  randomBytes(10).copy(b, b.length - 10);
  return b;
}

async function* inChunks(data: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length] as number;
    yield data.subarray(at, at + n);
    at += n;
  }
}

async function write(name: string, data: AsyncIterable<Buffer>, sparse: boolean) {
  const path = join(dir, name);
  const fh = await open(path, 'wx');
  const bytes = await writeSparse(data, fh, sparse).finally(() => fh.close());
  return { path, bytes, allocated: statSync(path).blocks * 512 };
}

describe('writeSparse', () => {
  const data = image();

  it.each([
    ['aligned 64 KiB chunks', [64 * 1024]],
    ['odd chunk sizes', [1, 4095, 7919, 65_537, 3]],
    ['one byte at a time for a while, then big', [1, 1, 1, 1, 2 * MIB]],
  ])('keeps zero blocks as holes with %s', async (title, sizes) => {
    const got = await write(`s-${title.length}`, inChunks(data, sizes), true);
    expect(got.bytes).toBe(data.length);
    expect(readFileSync(got.path).equals(data)).toBe(true);
    // The data touches 25 + 2 + 1 blocks; a filesystem may allocate a little more around them.
    expect(got.allocated).toBeLessThanOrEqual(256 * 1024);
    expect(got.allocated).toBeGreaterThanOrEqual(28 * HOLE_BLOCK_BYTES);
  });

  it('keeps a trailing run of zeros as a hole of the right length', async () => {
    const zerosAtEnd = Buffer.concat([Buffer.from('x'), Buffer.alloc(MIB + 17)]);
    const got = await write('tail', inChunks(zerosAtEnd, [5000]), true);
    expect(statSync(got.path).size).toBe(zerosAtEnd.length);
    expect(got.allocated).toBeLessThanOrEqual(64 * 1024);
  });

  it('SPARSE=no writes every block', async () => {
    const got = await write('full', inChunks(data, [65_537]), false);
    expect(readFileSync(got.path).equals(data)).toBe(true);
    expect(got.allocated).toBeGreaterThanOrEqual(data.length);
  });
});
