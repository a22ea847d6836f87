import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../../common/src/log.js';
import { StorageError } from '../../../common/src/errors.js';
import { type DomainDisk, liveDomain } from '../libvirt/domain.js';
import { externalSnapshot } from '../libvirt/external-snapshot.js';
import type { FreezeMode } from '../libvirt/freeze.js';
import { watchBlockJob } from '../libvirt/block-job-wait.js';
import { type VirshOptions, virsh } from '../libvirt/virsh.js';

/** A block commit of a small overlay takes seconds; this only bounds a stuck one. */
const COMMIT_TIMEOUT_MS = 30 * 60_000;

/** `<tmp>/overlay_<disk_id>.qcow2`, OpenNebula's name for the temporary overlay (docs/opennebula/backups.md#ids-and-names). */
export function overlayPath(tmpDir: string, diskId: number): string {
  return join(tmpDir, `overlay_${diskId}.qcow2`);
}

function isOverlay(tmpDir: string, source: string): boolean {
  return source.startsWith(`${tmpDir}/overlay_`);
}

/**
 * Puts an empty external overlay on top of each backed-up disk (libvirt/external-snapshot.ts; libvirt
 * creates the files), with the guest held still as FS_FREEZE says. The guest then writes into the
 * overlays and the disks below are stable for a copy. Other disks get snapshot=no. `disks` is the
 * domain as the caller just read it.
 */
export async function createOverlays(
  domain: string,
  overlays: ReadonlyArray<{ target: string; file: string }>,
  disks: readonly DomainDisk[],
  freeze: FreezeMode,
  opts: VirshOptions & { log: Logger },
): Promise<void> {
  await externalSnapshot(domain, overlays, disks, { ...opts, freeze, reuseExisting: false });
}

/**
 * Commits every temporary overlay (a disk whose source is `<tmpDir>/overlay_*`) back into the
 * disk below it (`virsh blockcommit --active --shallow`, then `blockjob --pivot` once libvirt says
 * the commit is ready: block-job-wait.ts) and removes the file, so
 * the domain runs on its original disks again. Used by BackupFinish, BackupCancel and, before a
 * new backup, to undo what a killed agent left. A domain that is not running has nothing to commit.
 */
export async function commitOverlays(
  domain: string,
  tmpDir: string,
  opts: VirshOptions,
  log: Logger,
  known?: readonly DomainDisk[],
): Promise<number> {
  if (domain === '') return 0;
  const disks = known ?? (await runningDomainDisks(domain, opts));
  let committed = 0;
  for (const disk of disks) {
    if (!isOverlay(tmpDir, disk.source)) continue;
    log.info({ domain, target: disk.target, overlay: disk.source }, 'committing the backup overlay back');
    // Not bound to the caller's signal: the domain must get back onto its own disk.
    const quiet = { uri: opts.uri, what: opts.what };
    const watch = watchBlockJob(domain, disk.target, 'Active Block Commit', quiet);
    try {
      await virsh(['blockcommit', domain, disk.target, '--active', '--shallow'], quiet);
      await watch.ended({ whenReady: 'pivot', timeoutMs: COMMIT_TIMEOUT_MS });
    } finally {
      watch.close();
    }
    await rm(disk.source, { force: true });
    committed++;
  }
  return committed;
}

/** The disks of a running domain (one dumpxml); none when it is not running or unknown. */
async function runningDomainDisks(domain: string, opts: VirshOptions): Promise<readonly DomainDisk[]> {
  const d = await liveDomain(domain, opts).catch((err: unknown) => {
    if (err instanceof StorageError && err.reason === 'DOMAIN_NOT_FOUND') return undefined;
    throw err;
  });
  return d?.running ? d.disks : [];
}
