import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import { hashFile } from '../import/hash-file.js';
import type { Roots } from '../paths/roots.js';
import { checkQcow2Header } from '../qemu/qcow2-header.js';
import { openVerifiedFile } from '../transfer/verified-open.js';
import type { ChainFile } from './chain-paths.js';
import { readChainSums } from './chain-sums.js';
import { CHECKSUMS_FILE as SUMS_FILE } from './checksums-file.js';

export interface VerifyOptions {
  roots: Roots;
  /** This agent's name: errors name `<host>:<path>`. */
  host: string;
  signal: AbortSignal;
}

/**
 * Checks every file of a chain against its backup directory's SHA256SUMS and returns their local
 * paths, oldest first (docs/backups.md#restoring-from-the-repository). Each path is confined to
 * the roots; a directory or file that is missing is NOT_FOUND naming it, a file that is a symlink
 * or not regular is BAD_LAYOUT, a digest that differs (or a file SHA256SUMS does not list) is
 * CHECKSUM_MISMATCH naming the file. Files are hashed in a worker thread (import/hash-file.ts).
 * Every file must also be a qcow2 that opens nothing besides its backing file (qcow2-header.ts).
 */
export async function verifyChainFiles(files: readonly ChainFile[], opts: VerifyOptions): Promise<string[]> {
  const locals: string[] = [];
  for (const f of files) {
    const shown = `${opts.host}:${f.path}`;
    const localDir = await opts.roots.resolve(f.dir, 'chain');
    const dirStat = await lstat(localDir).catch(() => undefined);
    if (!dirStat?.isDirectory())
      throw new StorageError('NOT_FOUND', `backup directory ${opts.host}:${f.dir} is missing`);
    const local = await opts.roots.resolve(f.path, 'chain');
    const st = await lstat(local).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new StorageError('NOT_FOUND', `backup file ${shown} is missing`, { cause: err });
      throw asStorageError(err, 'reading', shown);
    });
    if (!st.isFile()) throw new StorageError('BAD_LAYOUT', `backup file ${shown} is not a regular file`);
    const sums = await readChainSums(join(localDir, SUMS_FILE), `${opts.host}:${f.dir}/${SUMS_FILE}`);
    const expected = sums.get(f.name);
    if (expected === undefined)
      throw new StorageError('CHECKSUM_MISMATCH', `backup file ${shown} is not listed in ${SUMS_FILE}`);
    const { fh } = await openVerifiedFile(local, shown);
    let actual: string;
    try {
      actual = (await hashFile(fh, ['sha256'], opts.signal)).digests[0] as string;
    } finally {
      await fh.close();
    }
    if (actual !== expected)
      throw new StorageError(
        'CHECKSUM_MISMATCH',
        `backup file ${shown} does not match its ${SUMS_FILE} (sha256 ${actual}, expected ${expected})`,
      );
    await checkQcow2Header(local, `backup file ${shown}`);
    locals.push(local);
  }
  return locals;
}
