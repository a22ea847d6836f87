import { WHOLE_DISK_TIMEOUT_MS } from '../../../common/src/tools/run-tool.js';
import { realpath, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import { writeFileAtomic } from '../../../common/src/files/atomic-file.js';
import type { Logger } from '../../../common/src/log.js';
import { type DomainDisk, liveDomain, requireRunning } from '../libvirt/domain.js';
import type { FreezeMode } from '../libvirt/freeze.js';
import type { VirshOptions } from '../libvirt/virsh.js';
import type { ChainScope } from '../qemu/layer-places.js';
import type { Progress } from '../jobs/job-registry.js';
import { type ImageFormat, convert } from '../qemu/qemu-img.js';
import { readChain } from '../qemu/safe-chain.js';
import { type BackupDirs, backupFileName, recreate, removeAll } from './backup-dirs.js';
import {
  checkpointId,
  checkpointName,
  deleteCheckpoints,
  listCheckpoints,
  requireQcow2ForCbt,
} from './checkpoints.js';
import { abortDomainJob } from './domain-job.js';
import { encode64 } from './encode64.js';
import { commitOverlays, createOverlays, overlayPath } from './overlays.js';
import { pushBackup } from './push-backup.js';
import { saveTpmState } from './tpm-state.js';
import {
  addBitmap,
  copyChangedBlocks,
  listBitmaps,
  makeZeroesExplicit,
  rebaseName,
  removeBitmap,
} from './qcow2-cbt.js';

/** qemu-img convert coroutines, as OpenNebula's `-m 4`. */
const CONVERT_COROUTINES = 4;

export type BackupMode = 'FULL' | 'INCREMENT';
export type Method = 'convert' | 'overlay' | 'push' | 'bitmap';

export interface BackupDiskPlan {
  readonly diskId: number;
  readonly target: string;
  /** Local path of `<vmdir>/disk.<id>` followed to its file (the active layer). */
  readonly file: string;
  /** DISK/FORMAT from the request: the disk is read with -f, never probed. */
  readonly format: ImageFormat;
}

export interface PrepareInput {
  readonly vmId: number;
  readonly domain: string;
  readonly live: boolean;
  readonly mode: BackupMode;
  readonly backupId: number;
  readonly parentId: number;
  readonly freeze: FreezeMode;
  readonly vmXml: string;
  readonly dirs: BackupDirs;
  readonly disks: readonly BackupDiskPlan[];
  readonly uri: string;
  readonly what: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** The agent's roots: every disk's chain is validated against them first (safe-chain.ts). */
  readonly scope: ChainScope;
  /** Where each disk's copy reports its progress (phase "backup"). */
  readonly progress?: ((p: Progress) => void) | undefined;
}

export interface PreparedDisk {
  readonly diskId: number;
  readonly file: string;
  readonly type: 'FULL' | 'INCREMENT';
  readonly newChainReason?: string;
}

export interface Prepared {
  readonly disks: PreparedDisk[];
  readonly method: Method;
}

/**
 * pre_backup[_live] on this host (docs/opennebula/backups.md#flow): the backup files of every disk and vm.xml in
 * `<vmdir>/backup`. On any failure (a cancel too) the VM is left as it was: the libvirt job is
 * aborted, overlays are committed back, and backup/ and tmp/ are removed.
 */
export async function prepareBackup(p: PrepareInput): Promise<Prepared> {
  const virshOpts: VirshOptions & { log: Logger } = { uri: p.uri, what: p.what, log: p.log };
  // A running domain is read once (one dumpxml); its disks serve every step below.
  const disks = p.live ? await undoLeftovers(p, virshOpts) : [];
  // Every disk's chain is checked before anything is written or read into a backup.
  for (const d of p.disks)
    await readChain(d.file, d.format, { what: p.what, signal: p.signal, scope: p.scope });
  await recreate(p.dirs);
  try {
    await writeFileAtomic(join(p.dirs.bck, 'vm.xml'), encode64(p.vmXml));
    await saveTpmState(p);
    if (p.mode === 'FULL') return p.live ? await fullLive(p, virshOpts, disks) : await fullOffline(p);
    return p.live ? await incrementLive(p, virshOpts, disks) : await incrementOffline(p);
  } catch (err) {
    await cleanUpAfterFailure(p, virshOpts);
    throw err;
  }
}

/**
 * What an interrupted backup (the agent killed, a lost post_backup) may have left on a running
 * domain: a backup job still running, disks still on `tmp/overlay_*`. Undone before anything else,
 * so the next backup starts from the VM's own disks.
 */
async function undoLeftovers(
  p: PrepareInput,
  o: VirshOptions & { log: Logger },
): Promise<readonly DomainDisk[]> {
  const domain = await liveDomain(p.domain, o);
  if (!domain.running) await requireRunning(p.domain, o);
  if (await abortDomainJob(p.domain, o, p.log)) {
    p.log.warn({ domain: p.domain }, 'a backup job was left running by an earlier backup; aborted it');
  }
  const n = await commitOverlays(p.domain, p.dirs.tmp, o, p.log, domain.disks);
  if (n === 0) return domain.disks;
  p.log.warn({ domain: p.domain, overlays: n }, 'committed overlays left by an earlier backup');
  return (await liveDomain(p.domain, o)).disks;
}

async function cleanUpAfterFailure(p: PrepareInput, o: VirshOptions & { log: Logger }): Promise<void> {
  const quiet: VirshOptions = { uri: o.uri, what: o.what };
  try {
    if (p.live) {
      await abortDomainJob(p.domain, quiet, p.log).catch(() => false);
      await commitOverlays(p.domain, p.dirs.tmp, quiet, p.log);
    }
    await removeAll(p.dirs);
  } catch (err) {
    p.log.error({ err: (err as Error).message }, 'cleaning up after a failed backup failed');
  }
}

const fileOf = (p: PrepareInput, diskId: number): string =>
  join(p.dirs.bck, backupFileName(diskId, p.backupId));

/** `qemu-img convert -U -m 4 -O qcow2`: a standalone copy of what the disk's chain reads. */
async function convertFull(source: string, format: ImageFormat, out: string, p: PrepareInput): Promise<void> {
  await convert(source, out, {
    sourceFormat: format,
    format: 'qcow2',
    sparse: true,
    coroutines: CONVERT_COROUTINES,
    what: p.what,
    signal: p.signal,
    timeoutMs: WHOLE_DISK_TIMEOUT_MS,
    progress: p.progress,
    progressPhase: 'backup',
  });
}

async function fullOffline(p: PrepareInput): Promise<Prepared> {
  const disks: PreparedDisk[] = [];
  for (const d of p.disks) {
    await convertFull(d.file, d.format, fileOf(p, d.diskId), p);
    disks.push({ diskId: d.diskId, file: fileOf(p, d.diskId), type: 'FULL' });
  }
  return { disks, method: 'convert' };
}

/**
 * FULL of a running VM: the guest is switched onto empty overlays (held still only for that
 * instant), the disks below no longer change and are copied; post_backup commits the overlays back.
 */
async function fullLive(
  p: PrepareInput,
  o: VirshOptions & { log: Logger },
  live: readonly DomainDisk[],
): Promise<Prepared> {
  const sources = await matchDomainDisks(p, live);
  await createOverlays(
    p.domain,
    sources.map((d) => ({ target: d.target, file: overlayPath(p.dirs.tmp, d.diskId) })),
    live,
    p.freeze,
    o,
  );
  const disks: PreparedDisk[] = [];
  for (const d of sources) {
    await convertFull(d.source, d.format, fileOf(p, d.diskId), p);
    disks.push({ diskId: d.diskId, file: fileOf(p, d.diskId), type: 'FULL' });
  }
  return { disks, method: 'overlay' };
}

/**
 * The domain's disk for each backed-up disk, checked to be the VM directory's `disk.<id>` (followed
 * to its file): a wrong TARGET, or a domain whose disk lives elsewhere, is refused rather than
 * copied into the backup.
 */
async function matchDomainDisks(
  p: PrepareInput,
  live: readonly DomainDisk[],
): Promise<Array<BackupDiskPlan & { source: string }>> {
  const out = [];
  for (const d of p.disks) {
    const disk = live.find((x) => x.target === d.target);
    if (!disk) {
      throw new StorageError('NOT_FOUND', `${p.what}: domain ${p.domain} has no file disk ${d.target}`);
    }
    const real = await realpath(disk.source).catch(() => disk.source);
    if (real !== d.file) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `${p.what}: disk ${d.target} of domain ${p.domain} is ${disk.source}, not disk.${d.diskId} of the VM directory`,
      );
    }
    // libvirt's driver type for the disk must be the format oned knows: a mismatch is refused.
    if (disk.format !== d.format) {
      throw new StorageError(
        'BAD_LAYOUT',
        `${p.what}: disk ${d.target} of domain ${p.domain} runs as ${disk.format}, but DISK/FORMAT is ${d.format}`,
      );
    }
    out.push({ ...d, source: disk.source });
  }
  return out;
}

/** The parent's file name, as the increment's backing name: `disk.<id>.<parent>`, relative. */
const parentName = (p: PrepareInput, diskId: number): string => backupFileName(diskId, p.parentId);

/**
 * INCREMENT of a running VM with libvirt checkpoints and a push-mode backup job. A chain start (or a
 * parent checkpoint libvirt no longer has) is a full backup with a new checkpoint; otherwise only
 * what changed since the parent's checkpoint. Older checkpoints of the chain are then dropped.
 */
async function incrementLive(
  p: PrepareInput,
  o: VirshOptions & { log: Logger },
  live: readonly DomainDisk[],
): Promise<Prepared> {
  for (const d of await matchDomainDisks(p, live)) {
    requireQcow2ForCbt(d.format, p.what, `disk ${d.diskId} (${d.target}) of ${p.domain}`);
  }
  const ours = (await listCheckpoints(p.domain, o))
    .map((name) => ({ name, id: checkpointId(p.vmId, name) }))
    .filter((c): c is { name: string; id: number } => c.id !== undefined)
    .sort((a, b) => a.id - b.id);
  // A checkpoint with this backup's id (or later) is left from a backup oned never recorded.
  const stale = ours.filter((c) => c.id >= p.backupId).map((c) => c.name);
  if (stale.length > 0) {
    p.log.warn({ checkpoints: stale }, 'deleting checkpoints left by an unrecorded backup');
    await deleteCheckpoints(p.domain, stale, o, p.log);
  }
  const kept = ours.filter((c) => c.id < p.backupId);
  const parent = p.parentId >= 0 ? checkpointName(p.vmId, p.parentId) : undefined;
  let reason: string | undefined;
  if (parent !== undefined && !kept.some((c) => c.name === parent)) {
    reason = `checkpoint ${parent} not found in domain ${p.domain}`;
  }
  const push = (incremental: string | undefined): Promise<void> =>
    pushBackup(
      {
        domain: p.domain,
        disks: live.map((d) => {
          const b = p.disks.find((x) => x.target === d.target);
          return b ? { target: d.target, file: fileOf(p, b.diskId) } : { target: d.target };
        }),
        ...(incremental === undefined ? {} : { incremental }),
        checkpoint: checkpointName(p.vmId, p.backupId),
        xmlDir: p.dirs.tmp,
        freeze: p.freeze,
      },
      { ...o, progress: p.progress },
      p.signal,
    );
  if (parent !== undefined && reason === undefined) {
    try {
      await push(parent);
    } catch (err) {
      const msg = (err as Error).message;
      if (!/checkpoint.*not found|bitmap.*(not found|missing|inconsistent)/i.test(msg)) throw err;
      reason = `libvirt could not use checkpoint ${parent}: ${msg}`;
      await Promise.all(p.disks.map((d) => rm(fileOf(p, d.diskId), { force: true })));
    }
  }
  if (parent === undefined || reason !== undefined) {
    if (reason !== undefined) logNewChain(p, reason);
    // A new chain: every older checkpoint goes, the new one is its root.
    await deleteCheckpoints(
      p.domain,
      kept.map((c) => c.name),
      o,
      p.log,
    );
    await push(undefined);
    return finishIncrement(p, 'push', reason);
  }
  // Increments name their parent file; libvirt wrote the live disk's path there.
  for (const d of p.disks) await rebaseName(fileOf(p, d.diskId), parentName(p, d.diskId), p);
  const older = kept.filter((c) => c.id < p.parentId).map((c) => c.name);
  await deleteCheckpoints(p.domain, older, o, p.log);
  return finishIncrement(p, 'push', undefined);
}

/**
 * INCREMENT of a powered-off VM: qcow2 persistent bitmaps (`qemu-img bitmap`) and qemu-nbd. The
 * changed clusters since the parent's bitmap are copied; a chain start or a missing parent bitmap
 * is a full copy. The new bitmap is added once the file is written; older ones but the parent's go.
 */
async function incrementOffline(p: PrepareInput): Promise<Prepared> {
  const cbt = { what: p.what, signal: p.signal };
  const infos = [];
  for (const d of p.disks) {
    requireQcow2ForCbt(d.format, p.what, `disk ${d.diskId} (${d.file})`);
    infos.push({ d, bitmaps: await listBitmaps(d.file, cbt) });
  }
  const parent = p.parentId >= 0 ? checkpointName(p.vmId, p.parentId) : undefined;
  const missing = parent === undefined ? [] : infos.filter((i) => !i.bitmaps.includes(parent));
  const reason =
    parent !== undefined && missing.length > 0
      ? `bitmap ${parent} not found in ${missing.map((i) => i.d.file).join(', ')}`
      : undefined;
  if (reason !== undefined) logNewChain(p, reason);
  const newName = checkpointName(p.vmId, p.backupId);
  for (const { d, bitmaps } of infos) {
    const ours = bitmaps.filter((b) => checkpointId(p.vmId, b) !== undefined);
    // A bitmap with this backup's id is left from a backup oned never recorded.
    for (const b of ours.filter((b) => (checkpointId(p.vmId, b) ?? -1) >= p.backupId)) {
      await removeBitmap(d.file, b, cbt);
    }
    const out = fileOf(p, d.diskId);
    if (parent === undefined || reason !== undefined) {
      await convertFull(d.file, 'qcow2', out, p);
      if (reason !== undefined) await makeZeroesExplicit(out, cbt);
      for (const b of ours.filter((b) => (checkpointId(p.vmId, b) ?? -1) < p.backupId))
        await removeBitmap(d.file, b, cbt);
    } else {
      await copyChangedBlocks(d.file, parent, out, parentName(p, d.diskId), cbt);
      for (const b of ours.filter((b) => (checkpointId(p.vmId, b) ?? -1) < p.parentId))
        await removeBitmap(d.file, b, cbt);
    }
    await addBitmap(d.file, newName, cbt);
  }
  return finishIncrement(p, 'bitmap', reason);
}

function logNewChain(p: PrepareInput, reason: string): void {
  p.log.warn(
    { vmId: p.vmId, backupId: p.backupId, parentId: p.parentId, reason },
    'starting a new incremental chain: this backup is a full copy',
  );
}

/** Full backups written where an increment was expected get explicit zeroes (see makeZeroesExplicit). */
async function finishIncrement(
  p: PrepareInput,
  method: Method,
  reason: string | undefined,
): Promise<Prepared> {
  const chainStart = p.parentId < 0 || reason !== undefined;
  if (method === 'push' && chainStart) {
    for (const d of p.disks) {
      // A full push backup names no backing file; make sure, then pin its zeroes.
      await rebaseName(fileOf(p, d.diskId), '', p);
      if (reason !== undefined) await makeZeroesExplicit(fileOf(p, d.diskId), p);
    }
  }
  return {
    method,
    disks: p.disks.map((d) => ({
      diskId: d.diskId,
      file: fileOf(p, d.diskId),
      type: chainStart ? 'FULL' : 'INCREMENT',
      ...(reason === undefined ? {} : { newChainReason: reason }),
    })),
  };
}
