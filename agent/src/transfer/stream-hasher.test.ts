import { randomFillSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BlockPool } from './block-pool.js';
import { runningDigest, type DigestAlgorithm } from './digest-algorithms.js';
import {
  InlineHasher,
  WorkerHasher,
  streamHasher,
  WORKER_HASH_MIN_BYTES,
  type StreamHasher,
} from './stream-hasher.js';

const KiB = 1024;

/** Hashes `streams` (each a list of chunk sizes) through `hasher` with pooled blocks. */
async function run(
  hasher: StreamHasher,
  streams: number[][],
  algorithm: DigestAlgorithm = 'sha256',
): Promise<{ got: string[]; want: string[] }> {
  const pool = new BlockPool(64 * KiB, 4);
  const got: string[] = [];
  const want: string[] = [];
  for (const sizes of streams) {
    const reference = runningDigest(algorithm);
    const pending: Promise<void>[] = [];
    for (const size of sizes) {
      const block = await pool.acquire();
      randomFillSync(block.buf, 0, 8 + size);
      reference.update(block.buf.subarray(8, 8 + size));
      pending.push(
        new Promise((resolve) => hasher.update(block, 8, size, () => resolve(pool.release(block)))),
      );
    }
    got.push((await hasher.digest()).toString('hex'));
    await Promise.all(pending);
    want.push(reference.digest().toString('hex'));
  }
  return { got, want };
}

describe('stream hashers', () => {
  const streams = [[64 * KiB - 8, 1, 100, 40_000, 64 * KiB - 8, 7, 5000, 12], [], [3]];

  it.each([
    ['inline', () => new InlineHasher()],
    ['worker', () => new WorkerHasher()],
  ])('%s: SHA-256 of each stream, in order, releasing every block', async (_name, make) => {
    const hasher = make();
    try {
      const { got, want } = await run(hasher, streams);
      expect(got).toEqual(want);
    } finally {
      await hasher.close();
    }
  });

  it('inline XXH3: the digest of each stream, in order, releasing every block', async () => {
    const hasher = new InlineHasher('xxh3-64');
    const { got, want } = await run(hasher, streams, 'xxh3-64');
    expect(got).toEqual(want);
    expect(got.every((d) => d.length === 16)).toBe(true);
  });

  it('the worker fails a digest once closed, and still releases blocks', async () => {
    const hasher = new WorkerHasher();
    const block = await new BlockPool(16, 1).acquire();
    await hasher.close();
    await expect(hasher.digest()).rejects.toThrow(/closed/);
    await new Promise<void>((resolve) => hasher.update(block, 0, 16, resolve));
  });

  it('uses a worker only for transfers large enough to pay for it', async () => {
    const small = streamHasher(WORKER_HASH_MIN_BYTES - 1);
    const large = streamHasher(WORKER_HASH_MIN_BYTES);
    expect(small).toBeInstanceOf(InlineHasher);
    expect(large).toBeInstanceOf(WorkerHasher);
    const xxh3 = streamHasher(WORKER_HASH_MIN_BYTES * 100, 'xxh3-64');
    expect(xxh3).toBeInstanceOf(InlineHasher);
    await Promise.all([small.close(), large.close(), xxh3.close()]);
  });
});
