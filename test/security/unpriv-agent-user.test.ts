// Security review, class 5 (docs/security.md#the-attack-tests): the agent runs unprivileged, as oneadmin does on an OpenNebula node. The core TM
// actions run through the shims and the coordinator against agents that are the test user: two
// started as root with `user` in their config (they drop to it before serving), one started as that
// user directly. Every file any of them leaves in a datastore belongs to the test user with the
// modes of agent/src/files/modes.ts.
import { chmodSync, chownSync, lstatSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIRECTORY_MODE, DISK_FILE_MODE, SMALL_FILE_MODE } from '../../agent/src/files/modes.js';
import { MIB, makeImage } from '../../cli/src/demo/demo-images.js';
import { distEntry } from '../../cli/src/demo/processes.js';
import { runAction, type ActionRun } from '../../cli/src/demo/run-action.js';
import {
  DEFAULT_HOSTS,
  ONED_DATASTORE_LOCATION,
  ONED_VMS_LOCATION,
  Stack,
} from '../../cli/src/demo/stack.js';
import { writeVmXml, type DiskFixture, type VmFixture } from '../../cli/src/demo/fake-oned/fixtures.js';
import { expectOk } from '../support/assertions.js';
import { imageInfo, layout } from '../support/files.js';
import {
  expectUserCanRead,
  ownershipProblems,
  processIds,
  testUser,
  type TestUser,
} from '../support/test-user.js';

const VM = 62;
const SYS = `${ONED_DATASTORE_LOCATION}/0`;
const VM_DIR = `${SYS}/${VM}`;
const QCOW2_SOURCE = `${ONED_DATASTORE_LOCATION}/1/62a1b2c3d4e5f60718293a4b5c6d7e8f`;
const RAW_SOURCE = `${ONED_DATASTORE_LOCATION}/1/62ffeeddccbbaa998877665544332211`;
const CPDS = `${ONED_DATASTORE_LOCATION}/1/62cpds00000000000000000000000000`;
const LCM = { diskSnapshotPoweroff: 51, diskResizePoweroff: 63, poweroff: 8 } as const;
/** Started as the test user itself (spawn's uid/gid); the other hosts start as root and drop. */
const SPAWNED_AS_USER = 'host02';
/** Marker files the probes read keep their own mode (common/src/files/atomic-file.ts writeFileAtomic). */
const MARKERS = new Set(['.monitor']);

let user: TestUser;
let base: string;
let stack: Stack;
const tm = (action: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc', action, args);
const local = (host: string, path: string): string => stack.localPath(host, path);
const dsDir = (base: string, host: string): string => join(base, 'hosts', host, 'datastores');

const qcowDisk: DiskFixture = {
  diskId: 0,
  imageId: 0,
  source: QCOW2_SOURCE,
  format: 'qcow2',
  tmMad: 'grpc',
  size: 32,
  originalSize: 32,
};
const rawDisk: DiskFixture = {
  diskId: 1,
  imageId: 1,
  source: RAW_SOURCE,
  format: 'raw',
  tmMad: 'grpc',
  persistent: true,
  size: 32,
  originalSize: 32,
};

async function writeVm(lcmState: number, hosts: string[], extra: Partial<VmFixture> = {}): Promise<void> {
  await writeVmXml(stack.fixturesDir, {
    id: VM,
    lcmState,
    disks: [
      qcowDisk,
      rawDisk,
      { diskId: 2, size: 16, type: 'fs', format: 'qcow2' },
      { diskId: 3, size: 16, type: 'swap' },
    ],
    history: hosts.map((hostname) => ({ hostname, dsId: 0, tmMad: 'grpc' })),
    ...extra,
  });
}

/**
 * A socket directory that does not exist yet. The agents that start as root make it (in the stack's
 * root-owned run directory) for their user before dropping; the one started as the user makes it
 * where that user may.
 */
function monitorSocket(host: string): string {
  const parent = host === SPAWNED_AS_USER ? base : join(base, 'run');
  return join(parent, `monitor-${host}`, 'agent.sock');
}

/** Hands what the test itself put into a datastore to the test user, as oneadmin owns its datastores. */
function giveToUser(path: string): void {
  const st = lstatSync(path);
  chownSync(path, user.uid, user.gid);
  if (st.isDirectory()) {
    chmodSync(path, DIRECTORY_MODE);
    for (const e of readdirSync(path)) giveToUser(join(path, e));
  } else if (st.isFile()) chmodSync(path, DISK_FILE_MODE);
}

/** Every datastore of every host: all belongs to the test user, with the agent's modes. */
function expectAllOwnedByUser(): void {
  for (const host of DEFAULT_HOSTS) {
    const problems = ownershipProblems(dsDir(base, host), {
      uid: user.uid,
      fileMode: DISK_FILE_MODE,
      dirMode: DIRECTORY_MODE,
      fileModeOf: (name) => (MARKERS.has(name) ? SMALL_FILE_MODE : undefined),
    });
    expect(problems, host).toEqual([]);
  }
}

beforeAll(async () => {
  user = testUser();
  expectUserCanRead(user, distEntry('agent/src/main.js'));
  base = await mkdtemp(join(tmpdir(), 'one-storage-unpriv-'));
  // mkdtemp makes it 0700: the agents' user must reach its datastores and its monitoring sockets.
  chmodSync(base, DIRECTORY_MODE);
  chownSync(base, user.uid, user.gid);
  const hostDirs: Record<string, string> = {};
  for (const host of DEFAULT_HOSTS) {
    hostDirs[host] = dsDir(base, host);
    await mkdir(hostDirs[host], { recursive: true });
  }
  giveToUser(join(base, 'hosts'));
  stack = await Stack.start({
    baseDir: base,
    hostDirs,
    agentRunAs: (name) => (name === SPAWNED_AS_USER ? { uid: user.uid, gid: user.gid } : undefined),
    agentSettings: (name) => ({
      // The same setting everywhere, as Ansible would write it: root drops to it, the user keeps it.
      user: user.name,
      monitor: { report: 'probes', socket: monitorSocket(name) },
    }),
  });
  await makeImage(local('frontend', QCOW2_SOURCE), 'qcow2', 32, 0x62);
  await makeImage(local('frontend', RAW_SOURCE), 'raw', 32, 0x63);
  await mkdir(local('frontend', `${RAW_SOURCE}.snap`));
  await makeImage(local('frontend', `${RAW_SOURCE}.snap/0`), 'raw', 8, 0x64);
  giveToUser(dsDir(base, 'frontend'));
  await mkdir(local('frontend', `${ONED_VMS_LOCATION}/${VM}`), { recursive: true });
  await writeFile(local('frontend', `${ONED_VMS_LOCATION}/${VM}/context.sh`), "ETH0_IP='198.51.100.62'\n");
});

afterAll(async () => {
  await stack?.stop();
  if (base) await rm(base, { recursive: true, force: true });
});

describe('agents run as the test user', () => {
  it('every agent process is the test user (real, effective, saved, filesystem ids) with its groups', () => {
    for (const host of DEFAULT_HOSTS) {
      const pid = stack.pids()[`agent-${host}`];
      expect(pid, host).toBeDefined();
      const ids = processIds(pid ?? 0);
      expect({ host, uids: ids.uids, gids: ids.gids }).toEqual({
        host,
        uids: [user.uid, user.uid, user.uid, user.uid],
        gids: [user.gid, user.gid, user.gid, user.gid],
      });
      expect(ids.groups.includes(0), `${host} keeps root's group`).toBe(false);
      // libvirt and kvm membership reach the agent only through its supplementary groups, which the
      // privilege drop sets (initgroups). spawn() with a uid clears them, so only the dropping ones.
      if (host !== SPAWNED_AS_USER) {
        expect(ids.groups, host).toEqual(expect.arrayContaining(user.groups.filter((g) => g !== user.gid)));
      }
    }
  });

  it('the monitoring socket directory and socket belong to the test user', () => {
    for (const host of DEFAULT_HOSTS) {
      const socket = monitorSocket(host);
      for (const p of [dirname(socket), socket]) {
        expect({ p, uid: lstatSync(p).uid }).toEqual({ p, uid: user.uid });
      }
    }
  });
});

describe('core actions with unprivileged agents', () => {
  it('clone and ln', async () => {
    await writeVm(LCM.poweroff, ['host01']);
    expectOk(await tm('clone', [`frontend:${QCOW2_SOURCE}`, `host01:${VM_DIR}/disk.0`, `${VM}`, '1']));
    expectOk(await tm('ln', [`frontend:${RAW_SOURCE}`, `host01:${VM_DIR}/disk.1`, `${VM}`, '1']));
    expect(layout(local('host01', VM_DIR))).toEqual(['disk.0', 'disk.1', 'disk.1.snap/', 'disk.1.snap/0']);
    expectAllOwnedByUser();
  });

  it('mkimage, mkswap and context', async () => {
    expectOk(await tm('mkimage', ['16', 'qcow2', `host01:${VM_DIR}/disk.2`, `${VM}`, '0']));
    expectOk(await tm('mkswap', ['16', `host01:${VM_DIR}/disk.3`, `${VM}`, '0']));
    const contextSh = `${ONED_VMS_LOCATION}/${VM}/context.sh`;
    expectOk(await tm('context', [contextSh, `host01:${VM_DIR}/disk.4`, `${VM}`, '0']));
    expect(layout(local('host01', VM_DIR))).toEqual(expect.arrayContaining(['disk.2', 'disk.3', 'disk.4']));
    expectAllOwnedByUser();
  });

  it('resize', async () => {
    await writeVm(LCM.diskResizePoweroff, ['host01']);
    expectOk(await tm('resize', [`host01:${VM_DIR}/disk.0`, '48', `${VM}`, '0']));
    expect((await imageInfo(local('host01', `${VM_DIR}/disk.0`), 'qcow2'))['virtual-size']).toBe(48 * MIB);
    expectAllOwnedByUser();
  });

  it('snap_create, snap_revert, snap_delete and cpds', async () => {
    await writeVm(LCM.diskSnapshotPoweroff, ['host01']);
    const disk = `host01:${VM_DIR}/disk.0`;
    expectOk(await tm('snap_create', [disk, '0', `${VM}`, '1']));
    expectOk(await tm('snap_create', [disk, '1', `${VM}`, '1']));
    await writeVm(LCM.diskSnapshotPoweroff, ['host01'], {
      snapshots: [{ diskId: 0, snapshots: [{ id: 0 }, { id: 1, active: true }] }],
    });
    expectOk(await tm('snap_revert', [disk, '0', `${VM}`, '1']));
    expectOk(await tm('snap_delete', [disk, '1', `${VM}`, '1']));
    expectOk(await tm('cpds', [disk, CPDS, '0', `${VM}`, '1']));
    // Opened as qcow2 (-f pinned): qemu-img refuses a saved image that is not one.
    expect((await imageInfo(local('frontend', CPDS), 'qcow2')).format).toBe('qcow2');
    expectAllOwnedByUser();
  });

  it('mv to the host whose agent was started as the test user, mvds back, delete', async () => {
    await writeVm(LCM.poweroff, ['host01', 'host02']);
    const before = layout(local('host01', VM_DIR));
    expectOk(await tm('mv', [`host01:${VM_DIR}`, `host02:${VM_DIR}`, `${VM}`, '0']));
    expect(layout(local('host02', VM_DIR))).toEqual(before);
    expectAllOwnedByUser();
    expectOk(await tm('mvds', [`host02:${VM_DIR}/disk.1`, RAW_SOURCE, `${VM}`, '1']));
    expectAllOwnedByUser();
    expectOk(await tm('delete', [`host02:${VM_DIR}`, `${VM}`, '0']));
    expect(layout(local('host02', SYS))).toEqual(['.monitor']);
    expectAllOwnedByUser();
  });
});
