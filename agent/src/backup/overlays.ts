import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../../common/src/log.js';
import { domainDisks, isRunning } from '../libvirt/domain.js';
import { type FreezeMode, withGuestHeld } from '../libvirt/freeze.js';
import { type VirshOptions, virsh } from '../libvirt/virsh.js';

/** A block commit of a small overlay takes seconds; this only bounds a stuck one. */
const COMMIT_TIMEOUT_MS = 30 * 60_000;

/** `<tmp>/overlay_<disk_id>.qcow2`, OpenNebula's name for the temporary overlay (reference 4.2). */
export function overlayPath(tmpDir: string, diskId: number): string {
  return join(tmpDir, `overlay_${diskId}.qcow2`);
}

function isOverlay(tmpDir: string, source: string): boolean {
  return source.startsWith(`${tmpDir}/overlay_`);
}

/**
 * Puts an empty external overlay on top of each backed-up disk (`virsh snapshot-create-as
 * --disk-only --atomic --no-metadata`), with the guest held still as FS_FREEZE says. The guest then
 * writes into the overlays and the disks below are stable for a copy. Other disks get snapshot=no.
 */
export async function createOverlays(
  domain: string,
  overlays: ReadonlyArray<{ target: string; file: string }>,
  freeze: FreezeMode,
  opts: VirshOptions & { log: Logger },
): Promise<void> {
  const all = await domainDisks(domain, opts);
  const specs = all.map((d) => {
    const o = overlays.find((x) => x.target === d.target);
    return o ? `${d.target},snapshot=external,file=${o.file}` : `${d.target},snapshot=no`;
  });
  const args = ['snapshot-create-as', domain, '--disk-only', '--atomic', '--no-metadata'];
  for (const s of specs) args.push('--diskspec', s);
  await withGuestHeld(domain, freeze, opts, () => virsh(args, opts));
}

/**
 * Commits every temporary overlay (a disk whose source is `<tmpDir>/overlay_*`) back into the
 * disk below it (`virsh blockcommit --active --shallow --pivot --wait`) and removes the file, so
 * the domain runs on its original disks again. Used by BackupFinish, BackupCancel and, before a
 * new backup, to undo what a killed agent left. A domain that is not running has nothing to commit.
 */
export async function commitOverlays(
  domain: string,
  tmpDir: string,
  opts: VirshOptions,
  log: Logger,
): Promise<number> {
  if (domain === '' || !(await isRunning(domain, opts))) return 0;
  let committed = 0;
  for (const disk of await domainDisks(domain, opts)) {
    if (!isOverlay(tmpDir, disk.source)) continue;
    log.info({ domain, target: disk.target, overlay: disk.source }, 'committing the backup overlay back');
    await virsh(['blockcommit', domain, disk.target, '--active', '--shallow', '--pivot', '--wait'], {
      uri: opts.uri,
      what: opts.what,
      timeoutMs: COMMIT_TIMEOUT_MS,
    });
    await rm(disk.source, { force: true });
    committed++;
  }
  return committed;
}
