import { StorageError } from '../../../common/src/errors.js';
import { HashWorker } from './hash-worker.js';

const HEX_LENGTH = { md5: 32, sha1: 40 } as const;
type Algorithm = keyof typeof HEX_LENGTH;

/**
 * The checksums of an import, over the bytes as fetched (before decompression: what OpenNebula's
 * downloader checks). MD5 is always computed, for the response; an expected MD5 and SHA-1 are each
 * checked when given (both, where the downloader checks only the last option it was passed), in
 * either case (docs/image-datastore.md#registering-an-image-cp-on-the-agent). The hashing runs in a
 * worker thread (HashWorker) once the stream is long enough; `close` stops it on failure.
 */
export class Digests {
  private readonly hashes: HashWorker;
  /** What is hashed: md5, then sha1 when one is expected. */
  readonly algorithms: readonly ('md5' | 'sha1')[];
  private readonly expected: Partial<Record<Algorithm, string>>;

  constructor(expected: { md5: string; sha1: string }, what: string) {
    this.expected = {};
    for (const algorithm of ['md5', 'sha1'] as const) {
      const value = expected[algorithm].trim().toLowerCase();
      if (value === '') continue;
      if (!new RegExp(`^[0-9a-f]{${HEX_LENGTH[algorithm]}}$`).test(value))
        throw new StorageError(
          'INVALID_ARGUMENT',
          `${what}: ${algorithm} must be ${HEX_LENGTH[algorithm]} hex digits, got ${JSON.stringify(expected[algorithm])}`,
        );
      this.expected[algorithm] = value;
    }
    this.algorithms = this.expected.sha1 !== undefined ? ['md5', 'sha1'] : ['md5'];
    this.hashes = new HashWorker(this.algorithms);
  }

  /** Hashes `chunk`; when a promise comes back, the worker is behind: wait for it before the next. */
  update(chunk: Buffer): Promise<void> | undefined {
    return this.hashes.update(chunk);
  }

  /** Ends the digests; DATA_LOSS (CHECKSUM_MISMATCH) naming the expected and the computed value. */
  async verify(what: string): Promise<{ md5: string }> {
    return this.compare(await this.hashes.digests(), what);
  }

  /** Checks digests computed elsewhere (hex, in the order of `algorithms`), as `verify` does. */
  compare(digests: readonly string[], what: string): { md5: string } {
    const [md5 = '', sha1] = digests;
    const got = { md5, sha1 };
    for (const algorithm of ['md5', 'sha1'] as const) {
      const want = this.expected[algorithm];
      if (want !== undefined && got[algorithm] !== want)
        throw new StorageError(
          'CHECKSUM_MISMATCH',
          `${what}: ${algorithm.toUpperCase()} mismatch: expected ${want}, got ${got[algorithm] ?? ''}`,
        );
    }
    return { md5: got.md5 };
  }

  async close(): Promise<void> {
    await this.hashes.close();
  }
}
