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

/** A chain file whose layout, SHA256SUMS entry and qcow2 header are checked; its digest is not yet. */
export interface CheckedChainFile {
  /** The file's real local path. */
  local: string;
  /** `<host>:<path>` for messages. */
  shown: string;
  /** Its hex SHA-256 as its directory's SHA256SUMS lists it. */
  expected: string;
}

/**
 * Checks every file of a chain against its backup directory's SHA256SUMS and returns their local
 * paths, oldest first (docs/backups.md#restoring-from-the-repository): checkChainFiles, then
 * verifyChainDigests.
 */
export async function verifyChainFiles(files: readonly ChainFile[], opts: VerifyOptions): Promise<string[]> {
  const checked = await checkChainFiles(files, opts);
  await verifyChainDigests(checked, opts.signal);
  return checked.map((c) => c.local);
}

/**
 * Everything about a chain's files except their content, oldest first: each path is confined to
 * the roots; a directory or file that is missing is NOT_FOUND naming it, a file that is a symlink
 * or not regular is BAD_LAYOUT, a file SHA256SUMS does not list is CHECKSUM_MISMATCH; every file
 * must be a qcow2 that opens nothing besides its backing file (qcow2-header.ts), so it is safe to
 * hand to qemu-img (pinned) before its digest is known.
 */
export async function checkChainFiles(
  files: readonly ChainFile[],
  opts: VerifyOptions,
): Promise<CheckedChainFile[]> {
  const checked: CheckedChainFile[] = [];
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
    await checkQcow2Header(local, `backup file ${shown}`);
    checked.push({ local, shown, expected });
  }
  return checked;
}

/**
 * Hashes each checked file (in a worker thread: import/hash-file.ts, one file at a time) and
 * compares it with its SHA256SUMS entry: a digest that differs is CHECKSUM_MISMATCH naming the
 * file. Each file is opened again with O_NOFOLLOW and its real path proven.
 */
export async function verifyChainDigests(
  checked: readonly CheckedChainFile[],
  signal: AbortSignal,
): Promise<void> {
  for (const c of checked) {
    const { fh } = await openVerifiedFile(c.local, c.shown);
    let actual: string;
    try {
      actual = (await hashFile(fh, ['sha256'], signal)).digests[0] as string;
    } finally {
      await fh.close();
    }
    if (actual !== c.expected)
      throw new StorageError(
        'CHECKSUM_MISMATCH',
        `backup file ${c.shown} does not match its ${SUMS_FILE} (sha256 ${actual}, expected ${c.expected})`,
      );
  }
}
