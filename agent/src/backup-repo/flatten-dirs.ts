import { readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import { fsyncPath, writeFileAtomic } from '../../../common/src/files/atomic-file.js';
import { tempName } from '../../../common/src/files/temp-name.js';
import { hashFile } from '../import/hash-file.js';
import type { Roots } from '../paths/roots.js';
import { checkQcow2Header } from '../qemu/qcow2-header.js';
import { describe } from '../qemu/qemu-img.js';
import { sweepDirectory } from '../transfer/stale-temps.js';
import { openVerifiedFile } from '../transfer/verified-open.js';
import type { ChainFile } from './chain-paths.js';
import { readChainSums } from './chain-sums.js';
import type { Progress } from '../jobs/job-registry.js';
import { mergePinnedChain } from './pinned-chain.js';
import { verifyChainFiles } from './verify-chain-files.js';
import { CHECKSUMS_FILE as SUMS_FILE, formatChecksums } from './checksums-file.js';

/** The list a flatten is about to make true (docs/backups.md#increment_flatten): read on a repeat. */
export const NEXT_SUMS_FILE = `.${SUMS_FILE}.next`;
const DISK_FILE = /^disk\.(0|[1-9]\d{0,9})\.(0|[1-9]\d{0,9})$/;

export interface BackupDir {
  /** oned view, `<base>/<vmid>/<bid>`, and the local path. */
  dir: string;
  local: string;
  bid: string;
}

export interface FlattenOptions {
  roots: Roots;
  host: string;
  agentName: string;
  signal: AbortSignal;
  what: string;
  /** Where each merge reports its progress (phase "merging"). */
  progress?: ((p: Progress) => void) | undefined;
}

/**
 * Merges the backups `dirs` (oldest first) into the last one, disk by disk, crash-safe and
 * repeatable (docs/backups.md#increment_flatten):
 * 1. each disk file of the last directory is checked against SHA256SUMS (or, on a repeat, the
 *    pending `.SHA256SUMS.next`); one without a backing name is already merged;
 * 2. every other disk's chain (one file per directory, checked against their SHA256SUMS) is merged
 *    with every layer pinned into a staging dot-file beside it, and hashed;
 * 3. `.SHA256SUMS.next` is written (fsynced), then each staging file renamed over its disk file,
 *    then `.SHA256SUMS.next` renamed over SHA256SUMS;
 * 4. the older directories are removed (missing ones are fine).
 * Interrupted anywhere, the last directory still restores each disk, and a repeat finishes.
 */
export async function flattenDirs(dirs: readonly BackupDir[], opts: FlattenOptions): Promise<void> {
  const last = dirs[dirs.length - 1] as BackupDir;
  const older = dirs.slice(0, -1);
  const shownLast = `${opts.host}:${last.dir}`;
  if (!(await stat(last.local).catch(() => undefined))?.isDirectory())
    throw new StorageError('NOT_FOUND', `backup directory ${shownLast} is missing`);
  const sums = await readChainSums(join(last.local, SUMS_FILE), `${shownLast}/${SUMS_FILE}`);
  const pending = await readChainSums(
    join(last.local, NEXT_SUMS_FILE),
    `${shownLast}/${NEXT_SUMS_FILE}`,
  ).catch((err: unknown) => {
    if (err instanceof StorageError && err.reason === 'NOT_FOUND') return new Map<string, string>();
    throw err;
  });
  // Staging files of an earlier, interrupted flatten of this agent (the lock is ours now).
  await sweepDirectory(last.local, { agent: opts.agentName, active: new Set() });
  const next = new Map(sums);
  const staged: Array<{ staging: string; target: string }> = [];
  try {
    for (const name of (await readdir(last.local)).filter((n) => DISK_FILE.test(n)).sort()) {
      const file = join(last.local, name);
      const shown = `${shownLast}/${name}`;
      const digest = await sha256(file, shown, opts.signal);
      if (digest !== sums.get(name) && digest !== pending.get(name))
        throw new StorageError('CHECKSUM_MISMATCH', `backup file ${shown} does not match its ${SUMS_FILE}`);
      await checkQcow2Header(file, `backup file ${shown}`);
      next.set(name, digest);
      if ((await describe(file, 'qcow2', { what: opts.what })).backingFilename === undefined) continue;
      const disk = (DISK_FILE.exec(name) as RegExpExecArray)[1] as string;
      const chain = await olderFiles(older, disk, opts);
      const locals = await verifyChainFiles(chain, opts);
      const staging = join(last.local, tempName(name, 'tmp', opts.agentName));
      staged.push({ staging, target: file });
      await mergePinnedChain([...locals, file], staging, {
        what: `${opts.what}: merging ${chain.length + 1} layers of ${shown}`,
        signal: opts.signal,
        progress: opts.progress,
      });
      await fsyncPath(staging);
      next.set(name, await sha256(staging, `${shown} (merged)`, opts.signal));
    }
    const text = formatChecksums([...next].map(([name, sha256]) => ({ name, sha256 })));
    await writeFileAtomic(join(last.local, NEXT_SUMS_FILE), text);
    for (const s of staged) await rename(s.staging, s.target);
    await fsyncPath(last.local);
    await rename(join(last.local, NEXT_SUMS_FILE), join(last.local, SUMS_FILE));
    await fsyncPath(last.local);
  } finally {
    for (const s of staged) await rm(s.staging, { force: true });
  }
  for (const d of older) await rm(d.local, { recursive: true, force: true });
}

/** The file of disk `disk` in each older directory: exactly one `disk.<disk>.<inc>` in each. */
async function olderFiles(
  older: readonly BackupDir[],
  disk: string,
  opts: FlattenOptions,
): Promise<ChainFile[]> {
  const files: ChainFile[] = [];
  for (const d of older) {
    const names = await readdir(d.local).catch(() => {
      throw new StorageError('NOT_FOUND', `backup directory ${opts.host}:${d.dir} is missing`);
    });
    const mine = names.filter((n) => DISK_FILE.exec(n)?.[1] === disk);
    if (mine.length !== 1)
      throw new StorageError(
        mine.length === 0 ? 'NOT_FOUND' : 'BAD_LAYOUT',
        `backup directory ${opts.host}:${d.dir} holds ${mine.length} files of disk ${disk} (expected one)`,
      );
    const name = mine[0] as string;
    files.push({ path: `${d.dir}/${name}`, dir: d.dir, name, bid: d.bid, inc: Number(name.split('.')[2]) });
  }
  return files;
}

async function sha256(file: string, shown: string, signal: AbortSignal): Promise<string> {
  const { fh } = await openVerifiedFile(file, shown);
  try {
    return (await hashFile(fh, ['sha256'], signal)).digests[0] as string;
  } finally {
    await fh.close();
  }
}
