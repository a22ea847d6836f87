/**
 * ReceiveBackup's work on the backup server (docs/backups.md#repository): the VM host's
 * `<vmdir>/backup/` is pulled over the data path into `<vmid>/.<backup_id>.partial` (every file's
 * SHA-256 checked as it arrives), `SHA256SUMS` is written from those same digests (nothing is read
 * back), everything is fsynced, and the directory is renamed to `<backup_id>`. Until that rename
 * the backup does not exist for ListBackup, ls or restore. On any failure or cancel the staging
 * directory goes, and so does a `<vmid>/` directory this call made.
 */
import { lstat, readdir, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError, reasonForErrno } from '../../../common/src/errors.js';
import { fsyncPath } from '../../../common/src/files/atomic-file.js';
import type { ReceiveBackupResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { makeDirectory } from '../files/make-directory.js';
import { DISK_FILE_MODE } from '../files/modes.js';
import { removeIfEmpty } from '../files/remove-if-empty.js';
import type { AgentContext, CallContext, PulledTree } from '../rpc/context.js';
import { descriptorPath, openVerifiedDirectory } from '../transfer/verified-open.js';
import type { BackupDir } from './backup-dir.js';
import { CHECKSUMS_FILE, formatChecksums, isChecksumName } from './checksums-file.js';
import { backupDirSizeMb } from './backup-dir-size.js';
import { holdStaging, stagingName, sweepStaging } from './staging.js';

export interface BackupSource {
  ticket: string;
  dataAddress: string;
  sourceName: string;
}

/** Pulls one backup into `dir` (its lock held by the caller). */
export async function receiveBackupInto(
  agent: AgentContext,
  dir: BackupDir,
  source: BackupSource,
  call: CallContext,
): Promise<ReceiveBackupResponse> {
  const what = `receive backup ${agent.name}:${dir.path} from ${source.sourceName}`;
  const fail = (err: unknown): StorageError => {
    if (err instanceof StorageError && err.message.startsWith(what)) return err;
    const { reason, why } =
      err instanceof StorageError ? { reason: err.reason, why: err.message } : reasonForErrno(err);
    return new StorageError(reason, `${what}: ${why}`, { cause: err });
  };
  if (await exists(dir.local))
    throw new StorageError('ALREADY_EXISTS', `${what}: the backup directory already exists`);
  const started = performance.now();
  const made = await makeDirectory(dir.vmDir).catch((err: unknown) => {
    throw fail(err);
  });
  // Everything below goes through the `<vmid>/` directory opened now: a symlink swapped in for it
  // later cannot redirect the staging directory or the rename.
  let held: FileHandle | undefined;
  const name = stagingName(dir.backupId);
  const release = holdStaging(join(dir.vmDir, name));
  let staging: string | undefined;
  try {
    held = await openVerifiedDirectory(dir.vmDir, 'backup VM directory');
    const at = descriptorPath(held);
    const swept = await sweepStaging(at, dir.vmDir);
    if (swept.length > 0) call.log.info({ removed: swept }, 'removed stale backup staging directories');
    staging = join(at, name);
    await rm(staging, { recursive: true, force: true });
    const pulled = await agent.dataPath.pullInto(
      { ...source, sparse: true },
      staging,
      join(dir.vmDir, name),
      call.signal,
      call.progress,
    );
    await checkTree(staging, pulled);
    const sums = formatChecksums(
      pulled.fileDigests.map((f) => ({ name: f.path, sha256: f.sha256.toString('hex') })),
    );
    await writeFile(join(staging, CHECKSUMS_FILE), sums, { flag: 'wx', mode: DISK_FILE_MODE });
    await fsyncPath(join(staging, CHECKSUMS_FILE));
    await fsyncPath(staging);
    if (call.signal.aborted) throw new StorageError('TRANSFER_FAILED', 'cancelled');
    if (await exists(join(at, dir.backupId)))
      throw new StorageError('ALREADY_EXISTS', 'the backup directory appeared meanwhile');
    await rename(staging, join(at, dir.backupId));
    staging = undefined;
    await fsyncPath(at);
    const sizeMb = await backupDirSizeMb(join(at, dir.backupId));
    const durationMs = Math.round(performance.now() - started);
    call.log.info({ bytes: pulled.bytes, files: pulled.files, sizeMb, durationMs }, 'backup received');
    return { bytes: pulled.bytes, files: pulled.files, durationMs, sizeMb };
  } catch (err) {
    if (staging !== undefined) await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    for (const d of [...made].reverse()) await removeIfEmpty(d).catch(() => undefined);
    const e = fail(err);
    call.log.warn({ reason: e.reason, why: e.message }, 'backup receive failed');
    throw e;
  } finally {
    release();
    await held?.close();
  }
}

/**
 * What arrived must be a backup directory: a directory of regular files with plain names, none
 * of them SHA256SUMS (the receiver writes it), each with its checked digest.
 */
async function checkTree(staging: string, pulled: PulledTree): Promise<void> {
  if (pulled.kind !== 'dir') throw new StorageError('BAD_LAYOUT', 'the source is not a directory');
  const digested = new Set(pulled.fileDigests.map((f) => f.path));
  for (const entry of await readdir(staging, { withFileTypes: true })) {
    if (!entry.isFile() || !isChecksumName(entry.name) || !digested.has(entry.name)) {
      throw new StorageError(
        'BAD_LAYOUT',
        `the source holds ${JSON.stringify(entry.name)}, which is not a plain file a backup may hold`,
      );
    }
  }
  if (digested.size === 0) throw new StorageError('BAD_LAYOUT', 'the source directory is empty');
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
}
