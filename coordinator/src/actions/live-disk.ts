import { StorageError } from '../../../common/src/errors.js';
import { FreezeMode, type LiveDisk } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { VmInfo } from '../oned/vm-xml.js';

/**
 * What a live action tells the agent about the running VM: its libvirt domain (DEPLOY_ID), the
 * disk's TARGET, and BACKUP_CONFIG/FS_FREEZE. A VM without a DEPLOY_ID or a disk without a TARGET
 * cannot be worked on live: that is a one-line error naming the VM and disk.
 */
export function liveDisk(vm: VmInfo, diskId: number): LiveDisk {
  if (vm.deployId === '') {
    throw new StorageError('INVALID_ARGUMENT', `VM ${vm.id} has no DEPLOY_ID: it is not deployed on a host`);
  }
  const target = vm.disk(diskId)?.target;
  if (target === undefined || target === '') {
    throw new StorageError('INVALID_ARGUMENT', `VM ${vm.id} DISK ${diskId} has no TARGET`);
  }
  return { domain: vm.deployId, target, freeze: freezeMode(vm.backupConfig['FS_FREEZE']) };
}

const FREEZE_MODES: Readonly<Record<string, FreezeMode>> = {
  NONE: FreezeMode.FREEZE_MODE_NONE,
  AGENT: FreezeMode.FREEZE_MODE_AGENT,
  SUSPEND: FreezeMode.FREEZE_MODE_SUSPEND,
};

/**
 * BACKUP_CONFIG/FS_FREEZE as the agent's contract spells it: NONE, AGENT or SUSPEND (any case,
 * blanks around); a missing or other value is NONE, as in oned (docs/opennebula/backups.md#flow).
 */
export function freezeMode(value: string | undefined): FreezeMode {
  return FREEZE_MODES[(value ?? '').trim().toUpperCase()] ?? FreezeMode.FREEZE_MODE_NONE;
}
