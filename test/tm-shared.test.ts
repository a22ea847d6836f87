// Shared mode (TM `grpc_qcow2`, replacing qcow2/shared, docs/opennebula/tm-actions.md#shared-and-qcow2): every host's agent
// sees the same filesystem, so disks are made in place: overlays for clones, the image itself for
// persistent disks with its snapshots in <SOURCE>.snap. Through the shims.
import { existsSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../cli/src/demo/demo-images.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { writeVmXml, type DiskFixture } from '../cli/src/demo/fake-oned/fixtures.js';
import { imageInfo, layout } from './support/files.js';
import { expectOk, holdsPattern } from './support/assertions.js';

const VM = 71;
const VM_DIR = `${ONED_DATASTORE_LOCATION}/0/${VM}`;
const NONPERSISTENT = `${ONED_DATASTORE_LOCATION}/1/sharedclone000000000000000000000`;
const PERSISTENT = `${ONED_DATASTORE_LOCATION}/1/sharedpers0000000000000000000000`;
const LCM_POWEROFF_SNAPSHOT = 51;

let shared: string;
let stack: Stack;
const tm = (action: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc_qcow2', action, args);
const local = (path: string): string => stack.localPath('host01', path);

const disks = (extra: Partial<DiskFixture> = {}): DiskFixture[] => [
  {
    diskId: 0,
    imageId: 0,
    source: NONPERSISTENT,
    format: 'qcow2',
    tmMad: 'grpc_qcow2',
    size: 32,
    originalSize: 16,
    ...extra,
  },
  {
    diskId: 1,
    imageId: 1,
    source: PERSISTENT,
    format: 'qcow2',
    tmMad: 'grpc_qcow2',
    persistent: true,
    size: 16,
    originalSize: 16,
  },
];

async function writeVm(
  snapshots?: Array<{ diskId: number; snapshots: Array<{ id: number; active?: boolean }> }>,
): Promise<void> {
  await writeVmXml(stack.fixturesDir, {
    id: VM,
    lcmState: LCM_POWEROFF_SNAPSHOT,
    disks: disks(),
    history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc_qcow2' }],
    ...(snapshots ? { snapshots } : {}),
  });
}

beforeAll(async () => {
  shared = await mkdtemp(join(tmpdir(), 'one-storage-nfs-'));
  const dir = join(shared, 'datastores');
  await mkdir(dir);
  stack = await Stack.start({ hostDirs: { frontend: dir, host01: dir, host02: dir } });
  await makeImage(local(NONPERSISTENT), 'qcow2', 16, 0x11);
  await makeImage(local(PERSISTENT), 'qcow2', 16, 0x22);
  await writeVm();
});

afterAll(async () => {
  await stack?.stop();
  await rm(shared, { recursive: true, force: true });
});

describe('clone and ln in place', () => {
  it('clone makes an overlay on the image (grown to SIZE); the VM writes leave the image alone', async () => {
    for (let i = 0; i < 2; i++)
      expectOk(await tm('clone', [`frontend:${NONPERSISTENT}`, `host01:${VM_DIR}/disk.0`, `${VM}`, '1']));
    expect(readlinkSync(local(`${VM_DIR}/disk.0`))).toBe('disk.0.snap/0');
    const info = await imageInfo(local(`${VM_DIR}/disk.0`), 'qcow2');
    expect(info['virtual-size']).toBe(32 * MIB);
    expect(info['backing-filename']).toMatch(/sharedclone0+$/);
    await writePattern(local(`${VM_DIR}/disk.0`), 'qcow2', 0x5a, 0, MIB);
    expect(await holdsPattern(local(NONPERSISTENT), 0x11)).toBe(true);
    expect(existsSync(local(`${ONED_DATASTORE_LOCATION}/0/.monitor`))).toBe(false);
  });

  it('ln links the persistent image through <SOURCE>.snap; the VM writes into the image', async () => {
    for (let i = 0; i < 2; i++)
      expectOk(await tm('ln', [`frontend:${PERSISTENT}`, `host01:${VM_DIR}/disk.1`, `${VM}`, '1']));
    // Relative links (security review, class 6): they resolve on every host, whatever directory it mounts.
    expect(readlinkSync(local(`${VM_DIR}/disk.1`))).toBe(`../../1/${basename(PERSISTENT)}.snap/0`);
    expect(readlinkSync(`${local(PERSISTENT)}.snap/0`)).toBe(`../${basename(PERSISTENT)}`);
    await writePattern(local(`${VM_DIR}/disk.1`), 'qcow2', 0x33, 0, MIB);
    expect(await holdsPattern(local(PERSISTENT), 0x33)).toBe(true);
  });
});

describe('snapshots of a persistent disk stay with the image', () => {
  it('snap_create puts the layer in <SOURCE>.snap; revert and cpds read the right states', async () => {
    expectOk(await tm('snap_create', [`host01:${VM_DIR}/disk.1`, '0', `${VM}`, '1']));
    expect(layout(`${local(PERSISTENT)}.snap`)).toEqual(
      expect.arrayContaining([`0 -> ../${basename(PERSISTENT)}`, '1']),
    );
    await writePattern(local(`${VM_DIR}/disk.1`), 'qcow2', 0x44, 0, MIB);
    const saved = `${ONED_DATASTORE_LOCATION}/1/sharedsaved00000000000000000000000`;
    expectOk(await tm('cpds', [`host01:${VM_DIR}/disk.1`, saved, '0', `${VM}`, '1']));
    expect(await holdsPattern(local(saved), 0x33)).toBe(true);
    await writeVm([{ diskId: 1, snapshots: [{ id: 0, active: true }] }]);
    expectOk(await tm('snap_revert', [`host01:${VM_DIR}/disk.1`, '0', `${VM}`, '1']));
    expect(await holdsPattern(local(`${VM_DIR}/disk.1`), 0x33)).toBe(true);
    expect(await holdsPattern(local(PERSISTENT), 0x33)).toBe(true);
    await runTool('qemu-img', ['check', '-q', local(`${VM_DIR}/disk.1`)]);
  });

  it('snap_delete removes a snapshot from <SOURCE>.snap and keeps what the disk reads', async () => {
    await writePattern(local(`${VM_DIR}/disk.1`), 'qcow2', 0x55, 2 * MIB, MIB);
    expectOk(await tm('snap_create', [`host01:${VM_DIR}/disk.1`, '1', `${VM}`, '1']));
    const withOne = layout(`${local(PERSISTENT)}.snap`).filter((l) => /^\d+$/.test(l)).length;
    await writeVm([{ diskId: 1, snapshots: [{ id: 0 }, { id: 1, active: true }] }]);
    for (let i = 0; i < 2; i++)
      expectOk(await tm('snap_delete', [`host01:${VM_DIR}/disk.1`, '1', `${VM}`, '1']));
    expect(layout(`${local(PERSISTENT)}.snap`).filter((l) => /^\d+$/.test(l)).length).toBe(withOne - 1);
    expect(await holdsPattern(local(`${VM_DIR}/disk.1`), 0x33)).toBe(true);
    expect(await holdsPattern(local(`${VM_DIR}/disk.1`), 0x55, 2 * MIB)).toBe(true);
    await runTool('qemu-img', ['check', '-q', local(`${VM_DIR}/disk.1`)]);
  });
});

describe('mv, mvds, delete', () => {
  it('moving between hosts on the same storage, and saving back, change nothing', async () => {
    const before = layout(local(VM_DIR));
    expectOk(await tm('mv', [`host01:${VM_DIR}/disk.0`, `host02:${VM_DIR}/disk.0`, `${VM}`, '1']));
    expectOk(await tm('mv', [`host01:${VM_DIR}`, `host02:${VM_DIR}`, `${VM}`, '0']));
    expectOk(await tm('mvds', [`host02:${VM_DIR}/disk.1`, PERSISTENT, `${VM}`, '1']));
    expect(layout(local(VM_DIR))).toEqual(before);
    expect(await holdsPattern(local(PERSISTENT), 0x33)).toBe(true);
  });

  it('a change of system datastore moves the directory', async () => {
    const other = `${ONED_DATASTORE_LOCATION}/100/${VM}`;
    expectOk(await tm('mv', [`host02:${VM_DIR}`, `host02:${other}`, `${VM}`, '100']));
    expect(existsSync(local(VM_DIR))).toBe(false);
    expect(await holdsPattern(local(`${other}/disk.0`), 0x5a)).toBe(true);
    expectOk(await tm('mv', [`host02:${other}`, `host02:${VM_DIR}`, `${VM}`, '0']));
  });

  it('delete removes the VM directory and leaves the images', async () => {
    expectOk(await tm('delete', [`host02:${VM_DIR}`, `${VM}`, '0']));
    expect(existsSync(local(VM_DIR))).toBe(false);
    expect(await holdsPattern(local(NONPERSISTENT), 0x11)).toBe(true);
    expect(await holdsPattern(local(PERSISTENT), 0x33)).toBe(true);
  });
});

describe('mixed mode: the shared image datastore serving a local system datastore', () => {
  it('clone.grpc makes a standalone local copy and marks the datastore for host monitoring', async () => {
    await writeVm();
    expectOk(await tm('clone.grpc', [`frontend:${NONPERSISTENT}`, `host01:${VM_DIR}/disk.0`, `${VM}`, '1']));
    expect(layout(local(VM_DIR))).toEqual(['disk.0']);
    expect((await imageInfo(local(`${VM_DIR}/disk.0`), 'qcow2'))['backing-filename']).toBeUndefined();
    expect(await holdsPattern(local(`${VM_DIR}/disk.0`), 0x11)).toBe(true);
    expect(existsSync(local(`${ONED_DATASTORE_LOCATION}/0/.monitor`))).toBe(true);
  });

  it('ln.grpc copies a persistent image with its snapshot chain; mvds.grpc brings the writes back', async () => {
    const disk1 = local(`${VM_DIR}/disk.1`);
    for (let i = 0; i < 2; i++)
      expectOk(await tm('ln.grpc', [`frontend:${PERSISTENT}`, `host01:${VM_DIR}/disk.1`, `${VM}`, '1']));
    const chain = await runTool('qemu-img', ['info', '-U', '--output=json', '--backing-chain', disk1]);
    const files = (JSON.parse(chain.stdout) as Array<{ filename: string }>).map((l) => l.filename);
    expect(
      files.every((f) => f.startsWith(local(VM_DIR))),
      files.join('\n'),
    ).toBe(true);
    expect(await holdsPattern(disk1, 0x33)).toBe(true);
    await writePattern(disk1, 'qcow2', 0x66, 0, MIB);
    expect(await holdsPattern(local(PERSISTENT), 0x33)).toBe(true); // the image is untouched by local writes
    for (let i = 0; i < 2; i++)
      expectOk(await tm('mvds.grpc', [`host01:${VM_DIR}/disk.1`, PERSISTENT, `${VM}`, '1']));
    expect(readlinkSync(local(PERSISTENT))).toMatch(/\.snap\/\d+$/);
    expect(await holdsPattern(local(PERSISTENT), 0x66)).toBe(true);
    await runTool('qemu-img', ['check', '-q', local(PERSISTENT)]);
  });
});
