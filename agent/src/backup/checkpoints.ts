import { StorageError } from '../../../common/src/errors.js';
import type { Logger } from '../../../common/src/log.js';
import { type VirshOptions, virsh } from '../libvirt/virsh.js';

/** `one-<vmid>-<backup_id>`: OpenNebula's checkpoint and bitmap names (docs/opennebula/backups.md#ids-and-names). */
export function checkpointName(vmId: number, backupId: number): string {
  return `one-${vmId}-${backupId}`;
}

/** The backup id in a name of this VM's chain, or undefined for any other name. */
export function checkpointId(vmId: number, name: string): number | undefined {
  const m = new RegExp(`^one-${vmId}-(\\d+)$`).exec(name);
  return m ? Number(m[1]) : undefined;
}

/** `virsh checkpoint-list DOM --name`. */
export async function listCheckpoints(domain: string, opts: VirshOptions): Promise<string[]> {
  const out = await virsh(['checkpoint-list', domain, '--name'], opts);
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/**
 * Deletes checkpoints (children first, so libvirt merges nothing into a checkpoint that goes too).
 * libvirt merges a deleted checkpoint's changes into its parent's bitmap, so the parent still
 * covers every change since it was taken.
 */
export async function deleteCheckpoints(
  domain: string,
  names: readonly string[],
  opts: VirshOptions,
  log: Logger,
): Promise<void> {
  for (const name of [...names].reverse()) {
    log.info({ domain, checkpoint: name }, 'deleting checkpoint');
    await virsh(['checkpoint-delete', domain, name], opts);
  }
}

/**
 * libvirt refuses checkpoints on raw disks with a long message; say it in one line first, naming
 * the disk (CBT needs qcow2 persistent bitmaps).
 */
export function requireQcow2ForCbt(format: string, what: string, disk: string): void {
  if (format !== 'qcow2') {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${what}: ${disk} is ${format}; incremental backups (CBT) need qcow2 disks`,
    );
  }
}
