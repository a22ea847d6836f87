import { join } from 'node:path';
import { writeFileAtomic } from '../../../common/src/files/atomic-file.js';
import type { Logger } from '../../../common/src/log.js';
import type { Progress } from '../jobs/job-registry.js';
import { type FreezeMode, withGuestHeld } from '../libvirt/freeze.js';
import { type VirshOptions, virsh } from '../libvirt/virsh.js';
import { waitForBackupJob } from './domain-job.js';

export interface PushDisk {
  readonly target: string;
  /** Local path of the file libvirt creates (it must not exist); absent: the disk is not backed up. */
  readonly file?: string;
}

export interface PushBackup {
  readonly domain: string;
  /** Every file disk of the domain: the ones without `file` get backup='no' and checkpoint='no'. */
  readonly disks: readonly PushDisk[];
  /** The checkpoint the changes are counted from; absent: a full backup. */
  readonly incremental?: string;
  /** The checkpoint created at the backup's point in time. */
  readonly checkpoint: string;
  /** Where the backup and checkpoint XML documents are written (the VM's tmp/). */
  readonly xmlDir: string;
  readonly freeze: FreezeMode;
}

const escapeAttr = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function backupXml(b: Pick<PushBackup, 'disks' | 'incremental'>): string {
  const disks = b.disks
    .map((d) =>
      d.file === undefined
        ? `<disk name='${d.target}' backup='no'/>`
        : `<disk name='${d.target}' backup='yes' type='file'><target file='${escapeAttr(d.file)}'/><driver type='qcow2'/></disk>`,
    )
    .join('');
  const inc = b.incremental === undefined ? '' : `<incremental>${b.incremental}</incremental>`;
  return `<domainbackup mode='push'>${inc}<disks>${disks}</disks></domainbackup>\n`;
}

export function checkpointXml(b: Pick<PushBackup, 'disks' | 'checkpoint'>): string {
  const disks = b.disks
    .map((d) => `<disk name='${d.target}' checkpoint='${d.file === undefined ? 'no' : 'bitmap'}'/>`)
    .join('');
  return `<domaincheckpoint><name>${b.checkpoint}</name><disks>${disks}</disks></domaincheckpoint>\n`;
}

/**
 * A libvirt push-mode backup (`virsh backup-begin --backupxml --checkpointxml`): QEMU itself writes
 * each disk's point-in-time content (full) or the clusters changed since `incremental` into a
 * qcow2 file, and the new checkpoint starts counting changes at the same instant. The guest is held
 * still only around backup-begin, which returns at once; the job is then polled to its end. The
 * signal aborts the job (domjobabort).
 */
export async function pushBackup(
  b: PushBackup,
  opts: VirshOptions & { log: Logger; progress?: ((p: Progress) => void) | undefined },
  signal: AbortSignal,
): Promise<void> {
  const backupFile = join(b.xmlDir, 'backup.xml');
  const checkpointFile = join(b.xmlDir, 'checkpoint.xml');
  await writeFileAtomic(backupFile, backupXml(b));
  await writeFileAtomic(checkpointFile, checkpointXml(b));
  const quiet: VirshOptions = { uri: opts.uri, what: opts.what };
  await withGuestHeld(b.domain, b.freeze, { ...quiet, log: opts.log }, () =>
    virsh(['backup-begin', b.domain, '--backupxml', backupFile, '--checkpointxml', checkpointFile], {
      ...quiet,
      signal,
    }),
  );
  await waitForBackupJob(b.domain, opts, signal);
}
