// resize and the live-migration hooks of the local-mode TM (docs/opennebula/tm-actions.md) through the shims.
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage } from '../cli/src/demo/demo-images.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { vmXml, writeVmXml, type VmFixture } from '../cli/src/demo/fake-oned/fixtures.js';
import { allocatedBytes, humanLines, imageInfo } from './support/files.js';
import { expectOk } from './support/assertions.js';

const VM = 21;
const SYS0 = `${ONED_DATASTORE_LOCATION}/0`;
const SYS100 = `${ONED_DATASTORE_LOCATION}/100`;
const LCM = { diskResize: 62, diskResizePoweroff: 63, running: 3 } as const;

let stack: Stack;
const tm = (action: string, args: string[], stdin?: string): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc', action, args, stdin);
const local = (host: string, path: string): string => stack.localPath(host, path);

const vmFixture = (extra: Partial<VmFixture> = {}): VmFixture => ({
  id: VM,
  lcmState: LCM.running,
  disks: [
    {
      diskId: 0,
      imageId: 0,
      source: `${ONED_DATASTORE_LOCATION}/1/a`,
      format: 'raw',
      tmMad: 'grpc',
      size: 32,
    },
    {
      diskId: 1,
      imageId: 1,
      source: `${ONED_DATASTORE_LOCATION}/2/b`,
      format: 'raw',
      tmMad: 'faketm',
      size: 32,
    },
  ],
  history: [
    { hostname: 'host01', dsId: 100, tmMad: 'grpc' },
    { hostname: 'host02', dsId: 0, tmMad: 'grpc' },
  ],
  ...extra,
});
const b64 = (vm: VmFixture): string => Buffer.from(vmXml(vm)).toString('base64');

beforeAll(async () => {
  stack = await Stack.start();
  // Another TM driver of the cloud (not ours): its hooks record how they were called.
  const fake = join(stack.remotesDir, 'tm', 'faketm');
  await mkdir(fake, { recursive: true });
  for (const hook of ['premigrate', 'postmigrate']) {
    const script = join(fake, hook);
    await writeFile(
      script,
      `#!${process.execPath}\nconst fs = require('fs');\nfs.writeFileSync(${JSON.stringify(`${script}.called`)}, JSON.stringify({ args: process.argv.slice(2), stdin: fs.readFileSync(0, 'utf8') }));\n`,
    );
    await chmod(script, 0o755);
  }
});

afterAll(async () => {
  await stack?.stop();
});

describe('resize', () => {
  it('grows a powered-off VM disk once; a repeat changes nothing', async () => {
    await writeVmXml(stack.fixturesDir, vmFixture({ lcmState: LCM.diskResizePoweroff }));
    const disk = `${SYS0}/${VM}/disk.0`;
    // DISK/FORMAT of disk 0 is raw (vmFixture): the disk is what oned says it is.
    await makeImage(local('host01', disk), 'raw', 32, 0x11);
    for (let i = 0; i < 3; i++) {
      expectOk(await tm('resize', [`host01:${disk}`, '48', `${VM}`, '0']));
      expect((await imageInfo(local('host01', disk), 'raw'))['virtual-size']).toBe(48 * MIB);
    }
    const smaller = await tm('resize', [`host01:${disk}`, '16', `${VM}`, '0']);
    expect(smaller.code).not.toBe(0);
    expect(humanLines(smaller.stderr)[0]).toMatch(/resize failed: .*shrinking .* is refused/);
  });

  it('does nothing while the VM runs (the hypervisor resizes)', async () => {
    await writeVmXml(stack.fixturesDir, vmFixture({ lcmState: LCM.diskResize }));
    const disk = `${SYS0}/${VM}/disk.0`;
    const r = await tm('resize', [`host01:${disk}`, '64', `${VM}`, '0']);
    expectOk(r);
    expect(r.stderr).toMatch(/INFO: resize: VM 21 is running/);
    expect((await imageInfo(local('host01', disk), 'raw'))['virtual-size']).toBe(48 * MIB);
  });

  it('preallocates the growth when SPARSE=no, and only then', async () => {
    const fixture = vmFixture({ lcmState: LCM.diskResizePoweroff });
    await writeVmXml(stack.fixturesDir, {
      ...fixture,
      disks: [
        {
          diskId: 2,
          imageId: 2,
          source: `${ONED_DATASTORE_LOCATION}/1/c`,
          format: 'raw',
          tmMad: 'grpc',
          attrs: { SPARSE: 'NO' },
        },
        { diskId: 3, imageId: 3, source: `${ONED_DATASTORE_LOCATION}/1/d`, format: 'raw', tmMad: 'grpc' },
      ],
    });
    const disk = `${SYS0}/${VM}/disk.2`;
    await makeImage(local('host01', disk), 'raw', 8, 0x12);
    expectOk(await tm('resize', [`host01:${disk}`, '64', `${VM}`, '0']));
    // falloc preallocates the grown part (8 → 64 MiB); the old part keeps its holes
    expect(allocatedBytes(local('host01', disk))).toBeGreaterThanOrEqual(56 * MIB);
    const sparseDisk = `${SYS0}/${VM}/disk.3`;
    await makeImage(local('host01', sparseDisk), 'raw', 8, 0x12);
    expectOk(await tm('resize', [`host01:${sparseDisk}`, '64', `${VM}`, '0']));
    expect(allocatedBytes(local('host01', sparseDisk))).toBeLessThan(4 * MIB);
  });
});

describe('premigrate / postmigrate / failmigrate', () => {
  const args = (nested = false): string[] => [
    'host01',
    'host02',
    `${SYS0}/${VM}`,
    `${VM}`,
    '0',
    ...(nested ? ['grpc'] : []),
  ];

  it('premigrate wipes the destination directory and runs the other TM hooks with our name appended', async () => {
    await mkdir(local('host02', `${SYS0}/${VM}`), { recursive: true });
    await writeFile(local('host02', `${SYS0}/${VM}/stale`), 'x');
    await makeImage(local('host01', `${SYS0}/${VM}/disk.9`), 'raw', 1, 0x13);
    const stdin = b64(vmFixture());
    expectOk(await tm('premigrate', args(), stdin));
    expect(existsSync(local('host02', `${SYS0}/${VM}`))).toBe(false);
    expect(existsSync(local('host01', `${SYS0}/${VM}/disk.9`))).toBe(true);
    const called = JSON.parse(
      readFileSync(join(stack.remotesDir, 'tm/faketm/premigrate.called'), 'utf8'),
    ) as {
      args: string[];
      stdin: string;
    };
    expect(called.args).toEqual([...args(), 'grpc']);
    expect(called.stdin.trim()).toBe(stdin);
  });

  it('a nested call does not fan out again', async () => {
    const marker = join(stack.remotesDir, 'tm/faketm/premigrate.called');
    await writeFile(marker, 'untouched');
    expectOk(await tm('premigrate', args(true), b64(vmFixture())));
    expect(readFileSync(marker, 'utf8')).toBe('untouched');
  });

  it('failmigrate deletes nothing', async () => {
    expectOk(await tm('failmigrate', args(), b64(vmFixture())));
    expect(existsSync(local('host01', `${SYS0}/${VM}/disk.9`))).toBe(true);
  });

  it('postmigrate removes the VM directory of the previous placement on the source', async () => {
    await makeImage(local('host01', `${SYS100}/${VM}/disk.0`), 'raw', 1, 0x14);
    expectOk(await tm('postmigrate', args(), b64(vmFixture())));
    expect(existsSync(local('host01', `${SYS100}/${VM}`))).toBe(false);
    expect(existsSync(join(stack.remotesDir, 'tm/faketm/postmigrate.called'))).toBe(true);
    // a repeat finds it gone: success
    expectOk(await tm('postmigrate', args(), b64(vmFixture())));
  });

  it.each([
    ['not base64', 'this is <xml> not base64!'],
    ['base64 of something that is not VM XML', Buffer.from('<HOST/>').toString('base64')],
    ['nothing', ''],
  ])('stdin that is %s gets one clear line', async (_what, stdin) => {
    const r = await tm('premigrate', args(), stdin);
    expect(r.code).not.toBe(0);
    expect(humanLines(r.stderr)).toHaveLength(1);
    expect(humanLines(r.stderr)[0]).toMatch(/premigrate failed: stdin: /);
  });
});
