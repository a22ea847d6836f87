// mkimage, mkswap, context, offline snapshots and cpds of the local-mode TM (docs/opennebula/tm-actions.md)
// through the shims, with real qemu-img, mkfs, genisoimage and a local HTTP server.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../cli/src/demo/demo-images.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, ONED_VMS_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { Journal } from '../coordinator/src/journal/journal.js';
import { writeVmXml, type DiskFixture } from '../cli/src/demo/fake-oned/fixtures.js';
import { imageInfo, layout } from './support/files.js';
import { expectOk, expectOneLineFailure, holdsPattern } from './support/assertions.js';

/** tm-local-disks reads raw and qcow2 disks: the format comes first here. */
const holds = (file: string, format: 'raw' | 'qcow2', pattern: number, offset: number): Promise<boolean> =>
  holdsPattern(file, pattern, offset, format);
const VM = 31;
const VM_DIR = `${ONED_DATASTORE_LOCATION}/0/${VM}`;
const IMAGE = `${ONED_DATASTORE_LOCATION}/1/3a3b3c3d3e3f30313233343536373839`;
const LCM_POWEROFF_SNAPSHOT = 51; // DISK_SNAPSHOT_POWEROFF

let stack: Stack;
let http: Server;
let httpBase: string;
const tm = (action: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc', action, args);
const local = (host: string, path: string): string => stack.localPath(host, path);

async function writeVm(
  disks: DiskFixture[],
  snapshots?: Array<{ diskId: number; snapshots: Array<{ id: number; active?: boolean }> }>,
) {
  await writeVmXml(stack.fixturesDir, {
    id: VM,
    lcmState: LCM_POWEROFF_SNAPSHOT,
    disks,
    history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
    ...(snapshots ? { snapshots } : {}),
  });
}

const blkid = (file: string, tag: string): string =>
  execFileSync('blkid', ['-p', '-o', 'value', '-s', tag, file], { encoding: 'utf8' }).trim();

beforeAll(async () => {
  stack = await Stack.start();
  http = createServer((req, res) => {
    if (req.url === '/keys/authorized_keys') res.end('ssh-ed25519 AAAA test@example\n');
    else {
      res.statusCode = 404;
      res.end('not found');
    }
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  httpBase = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await stack?.stop();
  await new Promise((resolve) => http?.close(resolve));
});

describe('mkimage / mkswap', () => {
  it('makes a qcow2 volatile disk; a repeat makes the same', async () => {
    await writeVm([{ diskId: 2, size: 64, type: 'fs', format: 'qcow2' }]);
    for (let i = 0; i < 3; i++) {
      expectOk(await tm('mkimage', ['64', 'qcow2', `host01:${VM_DIR}/disk.2`, `${VM}`, '0']));
      const info = await imageInfo(local('host01', `${VM_DIR}/disk.2`), 'qcow2');
      expect([info.format, info['virtual-size']]).toEqual(['qcow2', 64 * MIB]);
    }
  });

  it('formats the disk when DISK/FS is set', async () => {
    await writeVm([{ diskId: 3, size: 64, type: 'fs', format: 'raw', attrs: { FS: 'ext4' } }]);
    expectOk(await tm('mkimage', ['64', 'raw', `host01:${VM_DIR}/disk.3`, `${VM}`, '0']));
    expect(blkid(local('host01', `${VM_DIR}/disk.3`), 'TYPE')).toBe('ext4');
  });

  it('mkswap makes a swap area labelled swap', async () => {
    await writeVm([{ diskId: 4, size: 32, type: 'swap' }]);
    expectOk(await tm('mkswap', ['32', `host01:${VM_DIR}/disk.4`, `${VM}`, '0']));
    expect(blkid(local('host01', `${VM_DIR}/disk.4`), 'TYPE')).toBe('swap');
    expect(blkid(local('host01', `${VM_DIR}/disk.4`), 'LABEL')).toBe('swap');
  });

  it('refuses an unknown format with one line', async () => {
    expectOneLineFailure(
      await tm('mkimage', ['64', 'vmdk', `host01:${VM_DIR}/disk.5`, `${VM}`, '0']),
      /format "vmdk" is not one of raw, qcow2, swap/,
    );
    expect(existsSync(local('host01', `${VM_DIR}/disk.5`))).toBe(false);
  });
});

describe('context', () => {
  const contextSh = `${ONED_VMS_LOCATION}/${VM}/context.sh`;
  const extra = `${ONED_DATASTORE_LOCATION}/2/9f8e7d6c5b4a39281706f5e4d3c2b1a0`;

  beforeAll(async () => {
    await mkdir(local('frontend', `${ONED_VMS_LOCATION}/${VM}`), { recursive: true });
    await writeFile(local('frontend', contextSh), "ETH0_IP='198.51.100.7'\n");
    await mkdir(local('frontend', `${ONED_DATASTORE_LOCATION}/2`), { recursive: true });
    await writeFile(local('frontend', extra), 'echo hello from a FILES_DS file\n');
  });

  it('builds a CONTEXT ISO with context.sh, a renamed file and a downloaded one, as disk.N on the host', async () => {
    const iso = local('host01', `${VM_DIR}/disk.6`);
    for (let i = 0; i < 2; i++) {
      expectOk(
        await tm('context', [
          contextSh,
          `${extra}:init.sh`,
          `${httpBase}/keys/authorized_keys`,
          `host01:${VM_DIR}/disk.6`,
          `${VM}`,
          '0',
        ]),
      );
      expect(execFileSync('isoinfo', ['-d', '-i', iso], { encoding: 'utf8' })).toMatch(/Volume id: CONTEXT/);
      const read = (name: string): string =>
        execFileSync('isoinfo', ['-R', '-i', iso, '-x', `/${name}`], { encoding: 'utf8' });
      expect(read('context.sh')).toBe("ETH0_IP='198.51.100.7'\n");
      expect(read('init.sh')).toBe('echo hello from a FILES_DS file\n');
      expect(read('authorized_keys')).toBe('ssh-ed25519 AAAA test@example\n');
    }
    expect(
      layout(local('frontend', `${ONED_DATASTORE_LOCATION}/0`)).filter((l) => l.includes(`isofiles/${VM}`)),
    ).toEqual([]);
  });

  it.each([
    [
      'an http source that answers 404',
      () => `${httpBase}/missing`,
      /context failed: context file http:\/\/127\.0\.0\.1:\d+\/missing cannot be downloaded: HTTP 404/,
    ],
    ['a file that does not exist', () => `${ONED_VMS_LOCATION}/${VM}/nope.sh`, /context failed: .*nope\.sh/],
    ['a file outside the roots', () => '/etc/shadow', /context failed: .*\/etc\/shadow.*outside/],
  ])('%s: one line, no disk, no staging left', async (_what, file, pattern) => {
    const r = await tm('context', [contextSh, file(), `host01:${VM_DIR}/disk.7`, `${VM}`, '0']);
    expectOneLineFailure(r, pattern);
    expect(existsSync(local('host01', `${VM_DIR}/disk.7`))).toBe(false);
    expect(
      layout(local('frontend', `${ONED_DATASTORE_LOCATION}/0`)).filter((l) => l.includes(`isofiles/${VM}`)),
    ).toEqual([]);
  });
});

describe('offline snapshots and cpds', () => {
  const disk = `${VM_DIR}/disk.0`;
  const qcowDisk: DiskFixture = {
    diskId: 0,
    imageId: 0,
    source: IMAGE,
    format: 'qcow2',
    tmMad: 'grpc',
    size: 64,
    originalSize: 64,
  };

  beforeAll(async () => {
    await makeImage(local('frontend', IMAGE), 'qcow2', 64, 0x10);
    await writeVm([qcowDisk]);
    expectOk(await tm('clone', [`frontend:${IMAGE}`, `host01:${disk}`, `${VM}`, '1']));
  });

  it('snap_create keeps each state; snapshot ids of several digits work; a repeat succeeds', async () => {
    const file = local('host01', disk);
    await writePattern(file, 'qcow2', 0xa0, 0, MIB);
    expectOk(await tm('snap_create', [`host01:${disk}`, '0', `${VM}`, '1']));
    expectOk(await tm('snap_create', [`host01:${disk}`, '0', `${VM}`, '1']));
    await writePattern(file, 'qcow2', 0xb1, 0, MIB);
    expectOk(await tm('snap_create', [`host01:${disk}`, '12', `${VM}`, '1']));
    await writePattern(file, 'qcow2', 0xc2, 0, MIB);
    expect(await holds(file, 'qcow2', 0xc2, 0)).toBe(true);
    // file N holds snapshot N (the active layer was renamed 1 → 12 when oned skipped ids); the
    // active layer is the highest; the self link lets `disk.0.snap/K` backing names resolve.
    expect(layout(local('host01', VM_DIR)).filter((l) => l.startsWith('disk.0'))).toEqual([
      'disk.0 -> disk.0.snap/13',
      'disk.0.snap/',
      'disk.0.snap/0',
      'disk.0.snap/12',
      'disk.0.snap/13',
      'disk.0.snap/disk.0.snap -> .',
    ]);
    expect((await imageInfo(local('host01', `${VM_DIR}/disk.0.snap/13`), 'qcow2'))['backing-filename']).toBe(
      'disk.0.snap/12',
    );
    await runTool('qemu-img', ['check', '-q', file]);
  });

  it('cpds saves snapshot 0 and the current state as standalone images on the front-end', async () => {
    const saved0 = `${ONED_DATASTORE_LOCATION}/1/cpds0000000000000000000000000000`;
    const savedNow = `${ONED_DATASTORE_LOCATION}/1/cpdsnow00000000000000000000000000`;
    for (let i = 0; i < 2; i++) expectOk(await tm('cpds', [`host01:${disk}`, saved0, '0', `${VM}`, '1']));
    expectOk(await tm('cpds', [`host01:${disk}`, savedNow, '-1', `${VM}`, '1']));
    expect(await holds(local('frontend', saved0), 'qcow2', 0xa0, 0)).toBe(true);
    expect(await holds(local('frontend', savedNow), 'qcow2', 0xc2, 0)).toBe(true);
    expect((await imageInfo(local('frontend', saved0), 'qcow2'))['backing-filename']).toBeUndefined();
    expect(layout(local('host01', VM_DIR)).filter((l) => l.includes('cpds'))).toEqual([]);
  });

  it('snap_revert goes back to a snapshot and keeps the others', async () => {
    await writeVm([qcowDisk], [{ diskId: 0, snapshots: [{ id: 0 }, { id: 12, active: true }] }]);
    expectOk(await tm('snap_revert', [`host01:${disk}`, '0', `${VM}`, '1']));
    const file = local('host01', disk);
    expect(await holds(file, 'qcow2', 0xa0, 0)).toBe(true);
    expectOk(await tm('snap_revert', [`host01:${disk}`, '12', `${VM}`, '1']));
    expect(await holds(file, 'qcow2', 0xb1, 0)).toBe(true);
    await runTool('qemu-img', ['check', '-q', file]);
  });

  it('snap_delete of the active snapshot keeps what the disk reads; a missing id fails with one line', async () => {
    await writeVm([qcowDisk], [{ diskId: 0, snapshots: [{ id: 0 }, { id: 12, active: true }] }]);
    expectOk(await tm('snap_delete', [`host01:${disk}`, '12', `${VM}`, '1']));
    const file = local('host01', disk);
    expect(await holds(file, 'qcow2', 0xb1, 0)).toBe(true);
    expect(existsSync(local('host01', `${VM_DIR}/disk.0.snap/12`))).toBe(false);
    await runTool('qemu-img', ['check', '-q', file]);
    expectOneLineFailure(
      await tm('snap_revert', [`host01:${disk}`, '7', `${VM}`, '1']),
      /snap_revert failed: .*snapshot 7/,
    );
  });

  it('mvds of a disk that is a snapshot chain saves its current state standalone, with its snapshots', async () => {
    const saved = `${ONED_DATASTORE_LOCATION}/1/mvdschain000000000000000000000000`;
    expectOk(await tm('mvds', [`host01:${disk}`, saved, `${VM}`, '1']));
    expect(await holds(local('frontend', saved), 'qcow2', 0xb1, 0)).toBe(true);
    expect((await imageInfo(local('frontend', saved), 'qcow2'))['backing-filename']).toBeUndefined();
    expect(layout(local('frontend', `${saved}.snap`))).toEqual(
      expect.arrayContaining(['0', 'disk.0.snap -> .']),
    );
    expect(await holds(local('frontend', `${saved}.snap/0`), 'qcow2', 0xa0, 0)).toBe(true);
    expect(layout(local('host01', VM_DIR)).filter((l) => l.includes('mvds'))).toEqual([]);
  });

  it('deleting a snapshot that has children keeps what the children hold', async () => {
    const d = `${VM_DIR}/disk.8`;
    await writeVm([{ diskId: 8, imageId: 8, source: IMAGE, format: 'qcow2', tmMad: 'grpc', size: 16 }]);
    await makeImage(local('host01', d), 'qcow2', 16, 0x70);
    const file = local('host01', d);
    // snapshot 0 holds 0x70 at 0; snapshot 1 adds 0x71 at 1 MiB; snapshot 2 adds 0x72 at 2 MiB
    expectOk(await tm('snap_create', [`host01:${d}`, '0', `${VM}`, '1']));
    await writePattern(file, 'qcow2', 0x71, MIB, MIB);
    expectOk(await tm('snap_create', [`host01:${d}`, '1', `${VM}`, '1']));
    await writePattern(file, 'qcow2', 0x72, 2 * MIB, MIB);
    expectOk(await tm('snap_create', [`host01:${d}`, '2', `${VM}`, '1']));
    await writeVmXml(stack.fixturesDir, {
      id: VM,
      lcmState: LCM_POWEROFF_SNAPSHOT,
      disks: [{ diskId: 8, imageId: 8, source: IMAGE, format: 'qcow2', tmMad: 'grpc', size: 16 }],
      snapshots: [
        { diskId: 8, snapshots: [{ id: 0 }, { id: 1, parent: 0 }, { id: 2, parent: 1, active: true }] },
      ],
      history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
    });
    // snapshot 1 is the parent of snapshot 2 (ALLOW_ORPHANS lets oned ask): its data must survive in 2
    expectOk(await tm('snap_delete', [`host01:${d}`, '1', `${VM}`, '1']));
    expectOk(await tm('snap_revert', [`host01:${d}`, '2', `${VM}`, '1']));
    expect(await holds(file, 'qcow2', 0x70, 0)).toBe(true);
    expect(await holds(file, 'qcow2', 0x71, MIB)).toBe(true);
    expect(await holds(file, 'qcow2', 0x72, 2 * MIB)).toBe(true);
    expectOk(await tm('snap_revert', [`host01:${d}`, '0', `${VM}`, '1']));
    expect(await holds(file, 'qcow2', 0x70, 0)).toBe(true);
    expect(await holds(file, 'qcow2', 0x00, MIB)).toBe(true);
    await runTool('qemu-img', ['check', '-q', file]);
  });

  it('the journal records the VM of every action, wherever its vm_id argument sits', () => {
    const journal = new Journal(stack.journalPath);
    try {
      const actions = new Set(
        journal
          .recentCalls(200)
          .filter((c) => c.vmId === VM)
          .map((c) => c.action),
      );
      for (const a of [
        'mkimage',
        'mkswap',
        'context',
        'clone',
        'snap_create',
        'snap_revert',
        'snap_delete',
        'cpds',
      ]) {
        expect(actions, a).toContain(a);
      }
    } finally {
      journal.close();
    }
  });

  it('raw disks take full copies', async () => {
    const rawDisk = `${VM_DIR}/disk.1`;
    await writeVm([
      qcowDisk,
      { diskId: 1, imageId: 5, source: IMAGE, format: 'raw', tmMad: 'grpc', size: 16 },
    ]);
    await makeImage(local('host01', rawDisk), 'raw', 16, 0x31);
    expectOk(await tm('snap_create', [`host01:${rawDisk}`, '0', `${VM}`, '1']));
    await writePattern(local('host01', rawDisk), 'raw', 0x32, 0, MIB);
    expectOk(await tm('snap_revert', [`host01:${rawDisk}`, '0', `${VM}`, '1']));
    expect(await holds(local('host01', rawDisk), 'raw', 0x31, 0)).toBe(true);
    expectOk(await tm('snap_delete', [`host01:${rawDisk}`, '0', `${VM}`, '1']));
    expect(existsSync(local('host01', `${rawDisk}.snap/0`))).toBe(false);
  });
});
