// Live actions in shared mode (TM `grpc_qcow2`): a running domain on an overlay clone and on a
// persistent image whose snapshots live in <SOURCE>.snap (docs/opennebula/snapshots.md#persistent-images-in-shared-mode). Through the shims.
import { existsSync, readlinkSync, realpathSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage } from '../cli/src/demo/demo-images.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { writeVmXml } from '../cli/src/demo/fake-oned/fixtures.js';
import { imagesIdentical } from './support/files.js';
import { expectOk } from './support/assertions.js';
import { type TestDomain, destroyIfRunning, ensureLibvirt, startDomain } from './support/libvirt.js';

const VM = 73;
const DOMAIN = `one-ls${VM}`;
const VM_DIR = `${ONED_DATASTORE_LOCATION}/0/${VM}`;
const CLONED = `${ONED_DATASTORE_LOCATION}/1/livesharedclone00000000000000000`;
const PERSISTENT = `${ONED_DATASTORE_LOCATION}/1/livesharedpers000000000000000000`;
const SAVED = `${ONED_DATASTORE_LOCATION}/1/livesharedsaved00000000000000000`;
const LCM = { DISK_SNAPSHOT: 57, DISK_SNAPSHOT_DELETE: 59, HOTPLUG_SAVEAS: 26 } as const;

let shared: string;
let stack: Stack;
let dom: TestDomain;
const tm = (action: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc_qcow2', action, args);
const local = (path: string): string => stack.localPath('host01', path);
const expected = (name: string): string => join(shared, `${name}.raw`);

async function writeVm(lcmState: number): Promise<void> {
  await writeVmXml(stack.fixturesDir, {
    id: VM,
    lcmState,
    deployId: DOMAIN,
    disks: [
      {
        diskId: 0,
        imageId: 0,
        source: CLONED,
        format: 'qcow2',
        tmMad: 'grpc_qcow2',
        size: 32,
        target: 'vda',
      },
      {
        diskId: 1,
        imageId: 1,
        source: PERSISTENT,
        format: 'qcow2',
        tmMad: 'grpc_qcow2',
        persistent: true,
        size: 32,
        target: 'vdb',
      },
    ],
    history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc_qcow2' }],
    backupConfig: { FS_FREEZE: 'NONE' },
  });
}

/** Writes into the running guest's disk and into the expected raw image of that disk. */
async function guestWrite(target: 'vda' | 'vdb', byte: number, offset: number): Promise<void> {
  await dom.write(target, byte, offset, MIB);
  await runTool('qemu-io', ['-f', 'raw', '-c', `write -P ${byte} ${offset} ${MIB}`, expected(target)]);
}

beforeAll(async () => {
  await ensureLibvirt();
  await destroyIfRunning(DOMAIN);
  shared = await mkdtemp(join(tmpdir(), 'live-shared-'));
  await chmod(shared, 0o755);
  const dir = join(shared, 'datastores');
  await mkdir(dir);
  stack = await Stack.start({ baseDir: join(shared, 'stack'), hostDirs: { frontend: dir, host01: dir } });
  await makeImage(local(CLONED), 'qcow2', 32, 0x11);
  await makeImage(local(PERSISTENT), 'qcow2', 32, 0x22);
  for (const [img, target] of [
    [CLONED, 'vda'],
    [PERSISTENT, 'vdb'],
  ] as const) {
    await runTool('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', local(img), expected(target)]);
  }
  await writeVm(LCM.DISK_SNAPSHOT);
  expectOk(await tm('clone', [`frontend:${CLONED}`, `host01:${VM_DIR}/disk.0`, `${VM}`, '1']));
  expectOk(await tm('ln', [`frontend:${PERSISTENT}`, `host01:${VM_DIR}/disk.1`, `${VM}`, '1']));
  dom = await startDomain(
    DOMAIN,
    [
      { target: 'vda', path: local(`${VM_DIR}/disk.0`), format: 'qcow2' },
      { target: 'vdb', path: local(`${VM_DIR}/disk.1`), format: 'qcow2' },
    ],
    shared,
  );
}, 120_000);

afterAll(async () => {
  await dom?.destroy();
  await stack?.stop();
  if (shared && !process.env.KEEP_LIVE) await rm(shared, { recursive: true, force: true });
});

describe('live snapshots of a persistent disk stay with the image', () => {
  it('snap_create_live puts the new layers in <SOURCE>.snap and moves the domain onto them', async () => {
    await guestWrite('vdb', 0x31, 2 * MIB);
    expectOk(await tm('snap_create_live', [`host01:${VM_DIR}/disk.1`, '0', `${VM}`, '0']));
    await runTool('cp', [expected('vdb'), expected('pers-snap0')]);
    await guestWrite('vdb', 0x32, 3 * MIB);
    expectOk(await tm('snap_create_live', [`host01:${VM_DIR}/disk.1`, '1', `${VM}`, '0']));
    await runTool('cp', [expected('vdb'), expected('pers-snap1')]);
    await guestWrite('vdb', 0x33, 4 * MIB);
    expect(readlinkSync(local(`${VM_DIR}/disk.1`))).toBe(`../../1/${basename(PERSISTENT)}.snap/2`);
    expect(existsSync(local(`${VM_DIR}/disk.1.snap`))).toBe(false);
    // Snapshot 0 is the image itself (.snap/0 -> SOURCE); it kept the content of that moment.
    expect(await imagesIdentical(local(PERSISTENT), 'qcow2', expected('pers-snap0'), 'raw')).toBe(true);
    expect(await imagesIdentical(`${local(PERSISTENT)}.snap/1`, 'qcow2', expected('pers-snap1'), 'raw')).toBe(
      true,
    );
    expect(await imagesIdentical(local(`${VM_DIR}/disk.1`), 'qcow2', expected('vdb'), 'raw')).toBe(true);
  });

  it('snap_delete of snapshot 1 while the VM runs keeps the image and the running disk intact', async () => {
    await writeVm(LCM.DISK_SNAPSHOT_DELETE);
    expectOk(await tm('snap_delete', [`host01:${VM_DIR}/disk.1`, '1', `${VM}`, '0']));
    await dom.flush('vdb');
    expect(existsSync(`${local(PERSISTENT)}.snap/1`)).toBe(false);
    // The snapshot's backing name is relative (security review, class 6), so libvirt pulled with
    // --keep-relative: the active layer now names the base by a relative name, never a local path.
    const log = await readFile(join(stack.baseDir, 'logs', 'agent-host01.log'), 'utf8');
    expect(log).not.toMatch(/pulling the whole chain into the active layer/);
    const active = JSON.parse(
      (
        await runTool('qemu-img', [
          'info',
          '-U',
          '-f',
          'qcow2',
          '--output=json',
          `${local(PERSISTENT)}.snap/2`,
        ])
      ).stdout,
    ) as Record<string, unknown>;
    const backing = String(active['backing-filename']);
    expect(isAbsolute(backing), backing).toBe(false);
    // The short form the agent writes (libvirt's pull wrote a longer one), valid from any VM
    // directory and from the snap dir.
    expect(backing).toBe(`../../1/${basename(PERSISTENT)}.snap/0`);
    expect(realpathSync.native(`${local(PERSISTENT)}.snap/${backing}`)).toBe(realpathSync(local(PERSISTENT)));
    expect(await imagesIdentical(local(PERSISTENT), 'qcow2', expected('pers-snap0'), 'raw')).toBe(true);
    expect(await imagesIdentical(local(`${VM_DIR}/disk.1`), 'qcow2', expected('vdb'), 'raw')).toBe(true);
    expect(await dom.state()).toBe('running');
  });
});

describe('the overlay clone', () => {
  it('snap_create_live and cpds of the running disk; the image under the overlay is untouched', async () => {
    await writeVm(LCM.DISK_SNAPSHOT);
    await guestWrite('vda', 0x41, 5 * MIB);
    expectOk(await tm('snap_create_live', [`host01:${VM_DIR}/disk.0`, '0', `${VM}`, '0']));
    await guestWrite('vda', 0x42, 6 * MIB);
    await writeVm(LCM.HOTPLUG_SAVEAS);
    expectOk(await tm('cpds', [`host01:${VM_DIR}/disk.0`, SAVED, '-1', `${VM}`, '0']));
    expect(await imagesIdentical(local(SAVED), 'qcow2', expected('vda'), 'raw')).toBe(true);
    const info = JSON.parse(
      (await runTool('qemu-img', ['info', '-f', 'qcow2', '--output=json', local(SAVED)])).stdout,
    ) as Record<string, unknown>;
    expect(info['backing-filename']).toBeUndefined();
    // The image under the clone's overlay still holds only its own first MiB.
    const base = JSON.parse(
      (await runTool('qemu-img', ['info', '-U', '-f', 'qcow2', '--output=json', local(CLONED)])).stdout,
    ) as {
      'actual-size': number;
    };
    expect(base['actual-size']).toBeLessThan(3 * MIB);
    expect(await dom.state()).toBe('running');
  });
});
