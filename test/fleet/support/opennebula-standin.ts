import { chown, mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Container } from './container.js';

/** OpenNebula's packages create oneadmin with these ids (opennebula-common). */
export const ONEADMIN_ID = 9869;
export const ONED_CONF = '/etc/one/oned.conf';
export const ONE_AUTH = '/var/lib/one/.one/one_auth';
export const VMM_EXECRC = '/etc/one/vmm_exec/vmm_execrc';
/** The session the fake oned accepts; written into one_auth as oned's install would. */
export const FLEET_ONED_SESSION = 'oneadmin:fleet-password';

/**
 * oned.conf's stock driver declarations (OpenNebula 6.x/7.x), which the playbook must extend with
 * our driver names and TM_MAD_CONF/DS_MAD_CONF blocks (docs/opennebula/settings.md).
 */
const STOCK_ONED_CONF = `# Stand-in for an OpenNebula front-end's oned.conf: only the driver blocks the playbook edits.
TM_MAD = [
    EXECUTABLE = "one_tm",
    ARGUMENTS = "-t 15 -d dummy,lvm,shared,fs_lvm,fs_lvm_ssh,qcow2,ssh,ceph,dev,vcenter,iscsi_libvirt"
]

DATASTORE_MAD = [
    EXECUTABLE = "one_datastore",
    ARGUMENTS  = "-t 15 -d dummy,fs,lvm,ceph,dev,iscsi_libvirt,vcenter,restic,rsync -s shared,ssh,ceph,fs_lvm,fs_lvm_ssh,qcow2,vcenter"
]
`;

/** The KVM driver's stock vmm_execrc (OpenNebula's src/vmm_mad/exec/vmm_execrc), in substance. */
export const STOCK_VMM_EXECRC = `# Space separated list of VMM-TM pairs that support live disk snapshots.
LIVE_DISK_SNAPSHOTS="kvm-qcow2 kvm-shared kvm-ceph kvm-ssh qemu-qcow2 qemu-shared qemu-ceph qemu-ssh"

VNMAD_LOCAL_ACTIONS="elastic-post elastic-clean"
`;

/**
 * What OpenNebula's own packages leave on a node before one-storage is installed: the oneadmin user
 * (home /var/lib/one) on every node; on the front-end also oneadmin's one_auth and an oned.conf
 * with the stock driver blocks and the KVM driver's vmm_execrc, root:oneadmin 0640 (oned itself is not installed: the fake oned stands in for it).
 */
export async function installOpenNebulaStandIn(node: Container, frontend: boolean): Promise<void> {
  const id = String(ONEADMIN_ID);
  await node.exec(['groupadd', '--system', '--gid', id, 'oneadmin']);
  await node.exec([
    'useradd',
    '--system',
    '--uid',
    id,
    '--gid',
    id,
    '--home-dir',
    '/var/lib/one',
    '--create-home',
    '--shell',
    '/bin/bash',
    'oneadmin',
  ]);
  if (!frontend) return;
  const auth = node.path(ONE_AUTH);
  await mkdir(dirname(auth), { recursive: true, mode: 0o700 });
  await writeFile(auth, `${FLEET_ONED_SESSION}\n`, { mode: 0o600 });
  await chown(dirname(auth), ONEADMIN_ID, ONEADMIN_ID);
  await chown(auth, ONEADMIN_ID, ONEADMIN_ID);
  await mkdir(node.path(dirname(ONED_CONF)), { recursive: true });
  await writeFile(node.path(ONED_CONF), STOCK_ONED_CONF);
  await mkdir(node.path(dirname(VMM_EXECRC)), { recursive: true });
  await writeFile(node.path(VMM_EXECRC), STOCK_VMM_EXECRC, { mode: 0o640 });
  await chown(node.path(VMM_EXECRC), 0, ONEADMIN_ID);
}
