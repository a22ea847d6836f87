import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import { parseChecksums } from './checksums-file.js';

/** A SHA256SUMS file is one short line per file of a backup; anything bigger is not one. */
const MAX_SUMS_BYTES = 64 * 1024;

/**
 * Reads a backup directory's SHA256SUMS from disk (bounded) and parses it strictly with
 * parseChecksums (docs/backups.md#repository). Returns name -> digest. NOT_FOUND naming
 * `shown` when the file is missing; CHECKSUM_MISMATCH naming it for any malformed line, since a
 * damaged list can vouch for nothing.
 */
export async function readChainSums(file: string, shown: string): Promise<Map<string, string>> {
  let text: string;
  try {
    // a list swapped for a symlink is refused (ELOOP), never read through
    const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const buf = Buffer.alloc(MAX_SUMS_BYTES + 1);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      if (bytesRead > MAX_SUMS_BYTES)
        throw new StorageError('CHECKSUM_MISMATCH', `${shown} is larger than ${MAX_SUMS_BYTES} bytes`);
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof StorageError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new StorageError('NOT_FOUND', `${shown} is missing`, { cause: err });
    throw asStorageError(err, 'reading', shown);
  }
  return parseChecksums(text, shown);
}
