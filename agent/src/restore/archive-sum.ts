import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import { StorageError } from '../../../common/src/errors.js';

/** A SHA256SUMS file is one short line per file of a backup directory. */
const MAX_SUMS_BYTES = 1024 * 1024;
/** `<64 hex>  <name>`, as sha256sum writes it. */
const LINE = /^([0-9a-f]{64}) [ *](.+)$/;

/**
 * Checks `file` against the line for `name` in the SHA256SUMS file `sums` (docs/backups.md#repository):
 * CHECKSUM_MISMATCH naming the file when it differs or is not listed.
 */
export async function checkAgainstSums(
  file: string,
  sums: string,
  name: string,
  what: string,
): Promise<void> {
  const st = await lstat(sums);
  if (!st.isFile() || st.size > MAX_SUMS_BYTES)
    throw new StorageError('BAD_LAYOUT', `${what}: SHA256SUMS is not a small regular file`);
  let expected: string | undefined;
  for (const line of (await readFile(sums, 'utf8')).split('\n')) {
    const m = LINE.exec(line);
    if (m && m[2] === name) expected = m[1];
  }
  if (expected === undefined)
    throw new StorageError('CHECKSUM_MISMATCH', `${what}: ${name} is not listed in SHA256SUMS`);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  const actual = hash.digest('hex');
  if (actual !== expected) {
    throw new StorageError(
      'CHECKSUM_MISMATCH',
      `${what}: ${name} does not match its SHA256SUMS (sha256 ${actual}, expected ${expected})`,
    );
  }
}
