import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hashFile } from './hash-file.js';

const dir = mkdtempSync(join(tmpdir(), 'osb-hashfile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('hashFile', () => {
  it('gives the digests of the whole file and the bytes of its non-zero blocks', async () => {
    // 5 MiB + 100 bytes (past one 4 MiB read): data in block 0, block 300 and the short last block.
    const data = Buffer.alloc(5 * 1024 * 1024 + 100);
    data[10] = 1;
    data[300 * 4096 + 4095] = 2;
    data[data.length - 1] = 3;
    const path = join(dir, 'f');
    writeFileSync(path, data);
    const fh = await open(path, 'r');
    try {
      const got = await hashFile(fh, ['md5', 'sha1'], new AbortController().signal);
      expect(got).toEqual({
        digests: [
          createHash('md5').update(data).digest('hex'),
          createHash('sha1').update(data).digest('hex'),
        ],
        size: data.length,
        dataBlockBytes: 3 * 4096,
      });
    } finally {
      await fh.close();
    }
  });

  it('an aborted signal rejects with its reason', async () => {
    const path = join(dir, 'g');
    writeFileSync(path, Buffer.alloc(1024));
    const fh = await open(path, 'r');
    const c = new AbortController();
    c.abort(new Error('stop'));
    await expect(hashFile(fh, ['md5'], c.signal)).rejects.toThrow('stop');
    await fh.close();
  });

  it('an abort while the worker reads stops it and rejects with the reason', async () => {
    const path = join(dir, 'big');
    // 256 MiB of a hole: long enough to read that the abort lands while the worker is busy.
    writeFileSync(path, '');
    truncateSync(path, 256 * 1024 * 1024);
    const fh = await open(path, 'r');
    const c = new AbortController();
    const hashing = hashFile(fh, ['md5', 'sha1'], c.signal);
    setImmediate(() => c.abort(new Error('cancelled')));
    await expect(hashing).rejects.toThrow('cancelled');
    await fh.close();
  });
});
