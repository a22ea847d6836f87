import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Digests } from './digests.js';

const DATA = Buffer.from('the bytes as fetched');
const MD5 = createHash('md5').update(DATA).digest('hex');
const SHA1 = createHash('sha1').update(DATA).digest('hex');

async function run(md5: string, sha1: string): Promise<{ md5: string }> {
  const d = new Digests({ md5, sha1 }, 'cp image 7');
  try {
    await d.update(DATA.subarray(0, 5));
    await d.update(DATA.subarray(5));
    return await d.verify('cp image 7');
  } finally {
    await d.close();
  }
}

describe('Digests', () => {
  it.each([
    ['none', '', ''],
    ['md5', MD5, ''],
    ['md5 in upper case', MD5.toUpperCase(), ''],
    ['sha1', '', SHA1],
    ['both', MD5, SHA1.toUpperCase()],
  ])('accepts %s and always returns the MD5', async (_t, md5, sha1) => {
    await expect(run(md5, sha1)).resolves.toEqual({ md5: MD5 });
  });

  it('hashes a long stream in the worker, fed in odd-sized chunks, the same', async () => {
    // 40 MiB: past the worker's threshold and its queue's high-water mark.
    const big = Buffer.alloc(40 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    const want = { md5: createHash('md5').update(big).digest('hex') };
    const sha1 = createHash('sha1').update(big).digest('hex');
    const d = new Digests({ md5: want.md5, sha1 }, 'cp image 7');
    for (let at = 0; at < big.length; at += 999_983) await d.update(big.subarray(at, at + 999_983));
    await expect(d.verify('cp image 7')).resolves.toEqual(want);
    await d.close();
  });

  it.each([
    ['a wrong md5', '0'.repeat(32), '', /MD5 mismatch: expected 0{32}, got [0-9a-f]{32}/],
    ['a wrong sha1 with a right md5', MD5, 'f'.repeat(40), /SHA1 mismatch: expected f{40}, got/],
  ])('refuses %s with CHECKSUM_MISMATCH', async (_t, md5, sha1, message) => {
    await expect(run(md5, sha1)).rejects.toThrow(
      expect.objectContaining({
        reason: 'CHECKSUM_MISMATCH',
        message: expect.stringMatching(message) as unknown,
      }),
    );
  });

  it.each([
    ['md5', 'abc', ''],
    ['sha1', '', MD5],
  ])('a malformed %s is INVALID_ARGUMENT before anything is read', (field, md5, sha1) => {
    expect(() => new Digests({ md5, sha1 }, 'cp image 7')).toThrow(
      expect.objectContaining({
        reason: 'INVALID_ARGUMENT',
        message: expect.stringContaining(`${field} must be`) as unknown,
      }),
    );
  });
});
