import { open } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';

/** A SHA256SUMS file is one short line per file of a backup; anything bigger is not one. */
const MAX_SUMS_BYTES = 64 * 1024;
/** `<64 lower-case hex>  <name>` as sha256sum writes it (text mode: two spaces). */
const LINE = /^([0-9a-f]{64}) {2}([A-Za-z0-9._+-]{1,255})$/;

/**
 * Reads a backup directory's SHA256SUMS strictly (docs/backups.md#repository): every line
 * `<64 lower hex>  <name>`, each name once, nothing else. Returns name -> digest. NOT_FOUND naming
 * `shown` when the file is missing; CHECKSUM_MISMATCH naming it for any malformed line, since a
 * damaged list can vouch for nothing.
 */
export async function readChainSums(file: string, shown: string): Promise<Map<string, string>> {
  let text: string;
  try {
    const fh = await open(file, 'r');
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
  const sums = new Map<string, string>();
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  lines.forEach((line, i) => {
    const m = LINE.exec(line);
    if (!m) throw new StorageError('CHECKSUM_MISMATCH', `${shown} line ${i + 1} is not "<sha256>  <name>"`);
    const name = m[2] as string;
    if (sums.has(name)) throw new StorageError('CHECKSUM_MISMATCH', `${shown} lists ${name} twice`);
    sums.set(name, m[1] as string);
  });
  return sums;
}
