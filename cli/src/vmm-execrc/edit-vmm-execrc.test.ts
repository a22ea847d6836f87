import { describe, expect, it } from 'vitest';
import { APPENDED_MARK, editVmmExecrc, ourLiveSnapshotPairs } from './edit-vmm-execrc.js';

// OpenNebula's stock vmm_execrc (src/vmm_mad/exec/vmm_execrc), in substance.
const STOCK = `# Space separated list of VMM-TM pairs that support live disk snapshots.
LIVE_DISK_SNAPSHOTS="kvm-qcow2 kvm-shared kvm-ceph kvm-ssh qemu-qcow2 qemu-shared qemu-ceph qemu-ssh"

# Space separated list VNM_MAD-ACTION pairs that run locally
VNMAD_LOCAL_ACTIONS="elastic-post elastic-clean"
`;

describe('ourLiveSnapshotPairs', () => {
  it('pairs kvm and qemu with each of our TM drivers', () => {
    expect(ourLiveSnapshotPairs()).toEqual(['kvm-grpc', 'kvm-grpc_qcow2', 'qemu-grpc', 'qemu-grpc_qcow2']);
  });
});

describe('editVmmExecrc', () => {
  it('appends our pairs to the list, keeps the rest of the file, and a second apply changes nothing', () => {
    const once = editVmmExecrc(STOCK, 'apply', 'f');
    expect(once).toContain(
      'LIVE_DISK_SNAPSHOTS="kvm-qcow2 kvm-shared kvm-ceph kvm-ssh qemu-qcow2 qemu-shared qemu-ceph qemu-ssh kvm-grpc kvm-grpc_qcow2 qemu-grpc qemu-grpc_qcow2"\n',
    );
    expect(once.replace(/ kvm-grpc kvm-grpc_qcow2 qemu-grpc qemu-grpc_qcow2/, '')).toBe(STOCK);
    expect(editVmmExecrc(once, 'apply', 'f')).toBe(once);
  });

  it('remove takes out exactly our pairs and gives back the stock file', () => {
    const applied = editVmmExecrc(STOCK, 'apply', 'f');
    expect(editVmmExecrc(applied, 'remove', 'f')).toBe(STOCK);
    expect(editVmmExecrc(STOCK, 'remove', 'f')).toBe(STOCK);
  });

  it('edits the last assignment (the one the shell keeps), ignoring commented ones', () => {
    const text = `#LIVE_DISK_SNAPSHOTS="old"\nLIVE_DISK_SNAPSHOTS='kvm-qcow2'\nexport LIVE_DISK_SNAPSHOTS=kvm-ssh # local\n`;
    expect(editVmmExecrc(text, 'apply', 'f')).toBe(
      `#LIVE_DISK_SNAPSHOTS="old"\nLIVE_DISK_SNAPSHOTS='kvm-qcow2'\nexport LIVE_DISK_SNAPSHOTS="kvm-ssh kvm-grpc kvm-grpc_qcow2 qemu-grpc qemu-grpc_qcow2" # local\n`,
    );
  });

  it('adds a marked line to a file without the variable, and remove takes that line out again', () => {
    const text = 'VNMAD_LOCAL_ACTIONS="elastic-post"';
    const applied = editVmmExecrc(text, 'apply', 'f');
    expect(applied).toBe(
      `${text}\nLIVE_DISK_SNAPSHOTS="kvm-grpc kvm-grpc_qcow2 qemu-grpc qemu-grpc_qcow2" ${APPENDED_MARK}\n`,
    );
    expect(editVmmExecrc(applied, 'remove', 'f')).toBe(`${text}\n`);
  });

  it.each([
    ['a variable expansion', 'LIVE_DISK_SNAPSHOTS="$EXTRA kvm-qcow2"'],
    ['a command substitution', 'LIVE_DISK_SNAPSHOTS="`cat /etc/pairs`"'],
    ['a second command on the line', 'LIVE_DISK_SNAPSHOTS="kvm-qcow2"; OTHER=1'],
    ['an unterminated quote', 'LIVE_DISK_SNAPSHOTS="kvm-qcow2'],
  ])('refuses a value with %s, naming the file and line', (_what, line) => {
    expect(() => editVmmExecrc(`# x\n${line}\n`, 'apply', '/etc/one/vmm_exec/vmm_execrc')).toThrow(
      /^vmm_execrc \/etc\/one\/vmm_exec\/vmm_execrc: line 2 does not set LIVE_DISK_SNAPSHOTS to a plain quoted list; add kvm-grpc/,
    );
  });
});
