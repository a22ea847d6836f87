// Security review, class 6 (docs/security.md#the-attack-tests): names written into metadata are oned's paths or relative, never an agent's local
// root. Three agents map the SAME shared datastore location to three DIFFERENT local directories
// (bind mounts of one directory, as hosts that mount the shared datastore elsewhere, or the demo
// layout, do). Driven through the shims as one_tm does: shared mode (grpc_qcow2) through a
// migration, then mixed mode (ln.grpc / mvds.grpc).
import { realpathSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../../cli/src/demo/demo-images.js';
import { runAction, type ActionRun } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { runTool } from '../../common/src/tools/run-tool.js';
import {
  vmXml,
  writeVmXml,
  type HistoryFixture,
  type VmFixture,
} from '../../cli/src/demo/fake-oned/fixtures.js';
import { expectOk, holdsPattern } from '../support/assertions.js';
import { bindMounts, foreignNames, storedNames } from '../support/stored-names.js';

const VM = 91;
const MIXED_VM = 92;
const SYS = `${ONED_DATASTORE_LOCATION}/0`;
const VM_DIR = `${SYS}/${VM}`;
const MIXED_DIR = `${ONED_DATASTORE_LOCATION}/100/${MIXED_VM}`;
const CLONED = `${ONED_DATASTORE_LOCATION}/1/onedpathsclone0000000000000000000`;
const PERSISTENT = `${ONED_DATASTORE_LOCATION}/1/onedpathspers00000000000000000000`;
const MIXED_IMAGE = `${ONED_DATASTORE_LOCATION}/1/onedpathsmixed0000000000000000000`;
const SAVED = `${ONED_DATASTORE_LOCATION}/1/onedpathssaved0000000000000000000`;
const LCM_POWEROFF_SNAPSHOT = 51;
const HOSTS = ['frontend', 'host01', 'host02'] as const;

let base: string;
let real: string;
let unmount: (() => Promise<void>) | undefined;
let stack: Stack;
const tm = (action: string, args: string[], stdin?: string): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc_qcow2', action, args, stdin);
const on = (host: string, path: string): string => stack.localPath(host, path);

const VM_FIXTURE = (history: HistoryFixture[], snapshots?: VmFixture['snapshots']): VmFixture => ({
  id: VM,
  lcmState: LCM_POWEROFF_SNAPSHOT,
  disks: [
    { diskId: 0, imageId: 0, source: CLONED, format: 'qcow2', tmMad: 'grpc_qcow2', size: 16 },
    {
      diskId: 1,
      imageId: 1,
      source: PERSISTENT,
      format: 'qcow2',
      tmMad: 'grpc_qcow2',
      persistent: true,
      size: 16,
    },
  ],
  history,
  ...(snapshots ? { snapshots } : {}),
});
const ON_HOST01: HistoryFixture = { hostname: 'host01', dsId: 0, tmMad: 'grpc_qcow2' };
const ON_HOST02: HistoryFixture = { hostname: 'host02', dsId: 0, tmMad: 'grpc_qcow2' };

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'onedpaths-'));
  real = join(base, 'real', 'datastores');
  await mkdir(real, { recursive: true });
  const dirs = Object.fromEntries(HOSTS.map((h) => [h, join(base, h, 'datastores')]));
  unmount = await bindMounts(real, Object.values(dirs));
  stack = await Stack.start({ baseDir: join(base, 'stack'), hostDirs: dirs });
  await makeImage(on('frontend', CLONED), 'qcow2', 16, 0x11);
  await makeImage(on('frontend', PERSISTENT), 'qcow2', 16, 0x22);
  await makeImage(on('frontend', MIXED_IMAGE), 'qcow2', 16, 0x33);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await unmount?.();
  if (base) await rm(base, { recursive: true, force: true });
});

/** Every name stored anywhere in the datastores is relative or under oned's DATASTORE_LOCATION. */
async function expectOnlyOnedNames(): Promise<void> {
  const names = await storedNames(real);
  expect(names.length).toBeGreaterThan(0);
  expect(foreignNames(names, ONED_DATASTORE_LOCATION)).toEqual([]);
}

describe('shared mode across a migration between hosts that map the datastore differently', () => {
  it('clone and ln on host01, with a snapshot of each disk there', async () => {
    await writeVmXml(stack.fixturesDir, VM_FIXTURE([ON_HOST01]));
    expectOk(await tm('clone', [`frontend:${CLONED}`, `host01:${VM_DIR}/disk.0`, `${VM}`, '1']));
    expectOk(await tm('ln', [`frontend:${PERSISTENT}`, `host01:${VM_DIR}/disk.1`, `${VM}`, '1']));
    await writePattern(on('host01', `${VM_DIR}/disk.0`), 'qcow2', 0x44, MIB, MIB);
    await writePattern(on('host01', `${VM_DIR}/disk.1`), 'qcow2', 0x55, MIB, MIB);
    for (const d of [0, 1]) {
      expectOk(await tm('snap_create', [`host01:${VM_DIR}/disk.${d}`, '0', `${VM}`, '1']));
    }
    await expectOnlyOnedNames();
  });

  it('migrates to host02 as oned does for a shared system datastore', async () => {
    const stdin = Buffer.from(vmXml(VM_FIXTURE([ON_HOST01, ON_HOST02]))).toString('base64');
    await writeVmXml(stack.fixturesDir, VM_FIXTURE([ON_HOST01, ON_HOST02]));
    const hook = ['host01', 'host02', VM_DIR, `${VM}`, '0'];
    expectOk(await tm('premigrate', hook, stdin));
    for (const d of [0, 1]) {
      expectOk(await tm('mv', [`host01:${VM_DIR}/disk.${d}`, `host02:${VM_DIR}/disk.${d}`, `${VM}`, '1']));
    }
    expectOk(await tm('mv', [`host01:${VM_DIR}`, `host02:${VM_DIR}`, `${VM}`, '0']));
    expectOk(await tm('postmigrate', hook, stdin));
  });

  it('snap_create, snap_revert and snap_delete succeed on host02 and read the right data', async () => {
    for (const d of [0, 1]) {
      const disk = `host02:${VM_DIR}/disk.${d}`;
      await writePattern(on('host02', `${VM_DIR}/disk.${d}`), 'qcow2', 0x66, MIB, MIB);
      expectOk(await tm('snap_create', [disk, '1', `${VM}`, '1']));
      await writeVmXml(
        stack.fixturesDir,
        VM_FIXTURE([ON_HOST01, ON_HOST02], [{ diskId: d, snapshots: [{ id: 0, active: true }, { id: 1 }] }]),
      );
      expectOk(await tm('snap_revert', [disk, '0', `${VM}`, '1']));
      expect(await holdsPattern(on('host02', `${VM_DIR}/disk.${d}`), d === 0 ? 0x44 : 0x55, MIB)).toBe(true);
      expectOk(await tm('snap_delete', [disk, '1', `${VM}`, '1']));
      await runTool('qemu-img', ['check', '-q', '-U', on('host02', `${VM_DIR}/disk.${d}`)]);
    }
    await expectOnlyOnedNames();
  });

  it('cpds on host02 saves the snapshot into the image datastore', async () => {
    expectOk(await tm('cpds', [`host02:${VM_DIR}/disk.0`, SAVED, '0', `${VM}`, '1']));
    expect(await holdsPattern(on('frontend', SAVED), 0x44, MIB)).toBe(true);
    expect(await holdsPattern(on('frontend', SAVED), 0x11)).toBe(true);
    await expectOnlyOnedNames();
  });
});

describe('mixed mode: a grpc system datastore served by the shared image datastore', () => {
  const disk = `host02:${MIXED_DIR}/disk.0`;
  beforeAll(async () => {
    await writeVmXml(stack.fixturesDir, {
      id: MIXED_VM,
      lcmState: LCM_POWEROFF_SNAPSHOT,
      tmMadSystem: 'grpc',
      disks: [
        {
          diskId: 0,
          imageId: 2,
          source: MIXED_IMAGE,
          format: 'qcow2',
          tmMad: 'grpc_qcow2',
          tmMadSystem: 'grpc',
          persistent: true,
          size: 16,
        },
      ],
      history: [{ hostname: 'host02', dsId: 100, tmMad: 'grpc' }],
    });
  });

  it('ln.grpc, snap_create and mvds.grpc leave the front-end a SOURCE link it can follow', async () => {
    expectOk(await tm('ln.grpc', [`frontend:${MIXED_IMAGE}`, disk, `${MIXED_VM}`, '1']));
    await writePattern(on('host02', `${MIXED_DIR}/disk.0`), 'qcow2', 0x77, MIB, MIB);
    expectOk(await tm('snap_create.grpc', [disk, '0', `${MIXED_VM}`, '1']));
    await writePattern(on('host02', `${MIXED_DIR}/disk.0`), 'qcow2', 0x78, 2 * MIB, MIB);
    expectOk(await tm('mvds.grpc', [disk, MIXED_IMAGE, `${MIXED_VM}`, '1']));
    const source = on('frontend', MIXED_IMAGE);
    const text = readlinkSync(source);
    expect(!isAbsolute(text) || text.startsWith(`${ONED_DATASTORE_LOCATION}/`), text).toBe(true);
    if (!isAbsolute(text)) {
      // Relative: it must lead into the image's own snap dir, which the front-end sees too.
      expect(realpathSync(source).startsWith(`${on('frontend', MIXED_IMAGE)}.snap/`)).toBe(true);
      expect(await holdsPattern(source, 0x77, MIB)).toBe(true);
      expect(await holdsPattern(source, 0x78, 2 * MIB)).toBe(true);
      expect(await holdsPattern(source, 0x33)).toBe(true);
    }
    await expectOnlyOnedNames();
  });
});
