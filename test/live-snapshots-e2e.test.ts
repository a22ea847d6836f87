// snap_create_live, live snap_delete and live cpds through the shims, the coordinator and a real
// agent (mutual TLS), on a running TCG domain. oned's part (VM XML with DEPLOY_ID, TARGET,
// LCM_STATE and BACKUP_CONFIG/FS_FREEZE) comes from the fake oned.
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage } from '../cli/src/demo/demo-images.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { writeVmXml } from '../cli/src/demo/fake-oned/fixtures.js';
import { imagesIdentical } from './support/files.js';
import { expectOk, expectOneLineFailure } from './support/assertions.js';
import { type TestDomain, destroyIfRunning, ensureLibvirt, startDomain } from './support/libvirt.js';

const VM = 52;
const DOMAIN = `one-ls${VM}`;
const SYS = `${ONED_DATASTORE_LOCATION}/0`;
const VM_DIR = `${SYS}/${VM}`;
const IMAGE = `${ONED_DATASTORE_LOCATION}/1/0c0d0e0f101112131415161718191a1b`;
const SAVED = `${ONED_DATASTORE_LOCATION}/1/5a5b5c5d5e5f606162636465666768ff`;
const LCM = { DISK_SNAPSHOT: 57, DISK_SNAPSHOT_DELETE: 59, HOTPLUG_SAVEAS: 26 } as const;

let base: string;
let stack: Stack;
let dom: TestDomain;
const tm = (action: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc', action, args);
const host01 = (p: string): string => stack.localPath('host01', p);
const expectedNow = (): string => join(base, 'expected.raw');

async function writeVm(lcmState: number, opts: { deployId?: string } = {}): Promise<void> {
  await writeVmXml(stack.fixturesDir, {
    id: VM,
    lcmState,
    deployId: opts.deployId ?? DOMAIN,
    disks: [{ diskId: 0, imageId: 7, source: IMAGE, format: 'qcow2', size: 64, target: 'vda' }],
    history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
    backupConfig: { FS_FREEZE: 'AGENT' },
  });
}

async function guestWrite(byte: number, offset: number): Promise<void> {
  await dom.write('vda', byte, offset, MIB);
  await runTool('qemu-io', ['-f', 'raw', '-c', `write -P ${byte} ${offset} ${MIB}`, expectedNow()]);
}

beforeAll(async () => {
  await ensureLibvirt();
  await destroyIfRunning(DOMAIN);
  base = await mkdtemp(join(tmpdir(), 'live-e2e-'));
  await chmod(base, 0o755); // QEMU (libvirt-qemu) walks down to the disks
  stack = await Stack.start({ baseDir: join(base, 'stack') });
  await makeImage(stack.localPath('frontend', IMAGE), 'qcow2', 64, 0x5a);
  await runTool('qemu-img', [
    'convert',
    '-f',
    'qcow2',
    '-O',
    'raw',
    stack.localPath('frontend', IMAGE),
    expectedNow(),
  ]);
  await writeVm(LCM.DISK_SNAPSHOT);
  expectOk(await tm('clone', [`frontend:${IMAGE}`, `host01:${VM_DIR}/disk.0`, `${VM}`, '1']));
  dom = await startDomain(
    DOMAIN,
    [{ target: 'vda', path: host01(`${VM_DIR}/disk.0`), format: 'qcow2' }],
    base,
  );
}, 120_000);

afterAll(async () => {
  await dom?.destroy();
  await stack?.stop();
  if (base && !process.env['KEEP_LIVE']) await rm(base, { recursive: true, force: true });
});

describe('live disk snapshots through the shims', () => {
  it('snap_create_live takes two snapshots of the running disk', async () => {
    await guestWrite(0x21, 2 * MIB);
    expectOk(await tm('snap_create_live', [`host01:${VM_DIR}/disk.0`, '0', `${VM}`, '0']));
    await runTool('cp', [expectedNow(), join(base, 'snap0.raw')]);
    await guestWrite(0x22, 3 * MIB);
    expectOk(await tm('snap_create_live', [`host01:${VM_DIR}/disk.0`, '1', `${VM}`, '0']));
    await runTool('cp', [expectedNow(), join(base, 'snap1.raw')]);
    await guestWrite(0x23, 4 * MIB);
    expect(await dom.source('vda')).toBe(host01(`${VM_DIR}/disk.0.snap/2`));
    expect(
      await imagesIdentical(host01(`${VM_DIR}/disk.0.snap/0`), 'qcow2', join(base, 'snap0.raw'), 'raw'),
    ).toBe(true);
    expect(
      await imagesIdentical(host01(`${VM_DIR}/disk.0.snap/1`), 'qcow2', join(base, 'snap1.raw'), 'raw'),
    ).toBe(true);
    expect(await imagesIdentical(host01(`${VM_DIR}/disk.0`), 'qcow2', expectedNow(), 'raw')).toBe(true);
    // FS_FREEZE=AGENT without a guest agent: suspended instead, said in the log, and resumed.
    const log = await readFile(join(stack.baseDir, 'logs', 'agent-host01.log'), 'utf8');
    expect(log).toMatch(/FS_FREEZE=AGENT but the guest agent did not freeze the filesystems; suspending/);
    expect(log).toMatch(/"heldBy":"suspend"/);
    expect(await dom.state()).toBe('running');
  });

  it('snap_delete of the oldest snapshot while the VM runs: pulled into the running disk, the next snapshot keeps its content', async () => {
    await writeVm(LCM.DISK_SNAPSHOT_DELETE);
    expectOk(await tm('snap_delete', [`host01:${VM_DIR}/disk.0`, '0', `${VM}`, '0']));
    await dom.flush('vda');
    expect(existsSync(host01(`${VM_DIR}/disk.0.snap/0`))).toBe(false);
    expect(
      await imagesIdentical(host01(`${VM_DIR}/disk.0.snap/1`), 'qcow2', join(base, 'snap1.raw'), 'raw'),
    ).toBe(true);
    expect(await imagesIdentical(host01(`${VM_DIR}/disk.0`), 'qcow2', expectedNow(), 'raw')).toBe(true);
    expect(await dom.state()).toBe('running');
  });

  it('cpds of the running disk (HOTPLUG_SAVEAS) saves it to the image datastore with a block copy', async () => {
    await writeVm(LCM.HOTPLUG_SAVEAS);
    expectOk(await tm('cpds', [`host01:${VM_DIR}/disk.0`, SAVED, '-1', `${VM}`, '0']));
    expect(await imagesIdentical(stack.localPath('frontend', SAVED), 'qcow2', expectedNow(), 'raw')).toBe(
      true,
    );
    expect(await dom.state()).toBe('running');
    expect(await dom.source('vda')).toBe(host01(`${VM_DIR}/disk.0.snap/2`));
  });

  it('a VM whose domain libvirt does not know fails in one line naming it; nothing changes', async () => {
    await writeVm(LCM.DISK_SNAPSHOT, { deployId: 'one-ls404' });
    const r = await tm('snap_create_live', [`host01:${VM_DIR}/disk.0`, '2', `${VM}`, '0']);
    expectOneLineFailure(r, /one-ls404/);
    expect(await dom.source('vda')).toBe(host01(`${VM_DIR}/disk.0.snap/2`));
  });

  it('a VM without a DEPLOY_ID is refused before any agent work', async () => {
    await writeVm(LCM.DISK_SNAPSHOT, { deployId: '' });
    const r = await tm('snap_create_live', [`host01:${VM_DIR}/disk.0`, '2', `${VM}`, '0']);
    expectOneLineFailure(r, /VM 52 has no DEPLOY_ID/);
  });
});
