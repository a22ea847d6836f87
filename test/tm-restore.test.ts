// TM restore (docs/backups.md#tm-restore) through the shims of both TM drivers: a fabricated
// grpc_backup repository on backup01 (a FULL backup and increments, SHA256SUMS), a powered-off VM
// on host01, and the disk layouts each driver expects afterwards.
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../cli/src/demo/demo-images.js';
import {
  vmXml,
  writeImageXml,
  writeVmXml,
  type DiskFixture,
  type VmFixture,
} from '../cli/src/demo/fake-oned/fixtures.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { expectOk, expectOneLineFailure, holdsPattern } from './support/assertions.js';
import {
  type Backup,
  backupImage,
  startRestoreStack,
  storeBackup,
  storeBackupImage,
} from './support/backup-repository.js';
import { imageInfo, imagesIdentical, layout, sha256File } from './support/files.js';

const LOC = ONED_DATASTORE_LOCATION;
const BACKUP_DS = 100;
const LCM_POWEROFF = 0;
const STATE_POWEROFF = 8;
const SIZE_MB = 8;

let shared: string;
let stack: Stack;
const local = (host: string, path: string): string => stack.localPath(host, path);
const tm = (driver: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', driver, 'restore', args);

async function bitmaps(file: string): Promise<unknown[]> {
  const out = await runTool('qemu-img', ['info', '-U', '-f', 'qcow2', '--output=json', file]);
  const info = JSON.parse(out.stdout) as { 'format-specific'?: { data?: { bitmaps?: unknown[] } } };
  return info['format-specific']?.data?.bitmaps ?? [];
}

/** No staging file or temporary left in a directory. */
function noLeftovers(dir: string): void {
  expect(readdirSync(dir).filter((n) => n.includes('.backup') || n.startsWith('.'))).toEqual([]);
}

async function image(id: number, vmId: number, chain: readonly Backup[]): Promise<void> {
  await storeBackupImage(stack, { id, vmId, dsId: BACKUP_DS, sizeMb: SIZE_MB, chain });
}

beforeAll(async () => {
  shared = await mkdtemp(join(tmpdir(), 'one-storage-restore-'));
  const dir = join(shared, 'datastores');
  await mkdir(dir);
  stack = await startRestoreStack(dir, BACKUP_DS);
});

afterAll(async () => {
  await stack?.stop();
  await rm(shared, { recursive: true, force: true });
});

describe('local mode (TM grpc)', () => {
  const VM = 80;
  const VM_DIR = `${LOC}/0/${VM}`;
  const vmDir = (): string => local('host01', VM_DIR);
  let untouched = '';
  const chain: Backup[] = [
    {
      bid: 'a0a0a0a0a0a0',
      disks: {
        0: [
          { offset: 0, length: MIB, byte: 0xa1 },
          { offset: MIB, length: MIB, byte: 0xb1 },
        ],
      },
    },
    { bid: 'b1b1b1b1b1b1', disks: { 0: [{ offset: MIB, length: MIB, byte: 0xc1 }] } },
    { bid: 'c2c2c2c2c2c2', disks: { 0: [{ offset: 2 * MIB, length: MIB, byte: 0xd1 }] } },
  ];

  beforeAll(async () => {
    const disk = (diskId: number): DiskFixture => ({
      diskId,
      imageId: diskId,
      source: `${LOC}/1/img${diskId}`,
      format: 'qcow2',
      tmMad: 'grpc',
    });
    await writeVmXml(stack.fixturesDir, {
      id: VM,
      state: STATE_POWEROFF,
      lcmState: LCM_POWEROFF,
      disks: [disk(0), disk(1)],
      history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
    });
    // The VM as local mode leaves it: disk.0 on a snapshot chain, disk.1 a plain file, a vTPM.
    await makeImage(join(vmDir(), 'disk.0.snap/0'), 'qcow2', SIZE_MB, 0x99);
    await runTool('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      '0',
      '-F',
      'qcow2',
      join(vmDir(), 'disk.0.snap/1'),
    ]);
    await runTool('ln', ['-s', 'disk.0.snap/1', join(vmDir(), 'disk.0')]);
    await makeImage(join(vmDir(), 'disk.1'), 'qcow2', SIZE_MB, 0x77);
    untouched = await sha256File(join(vmDir(), 'disk.1'));
    await mkdir(join(vmDir(), 'tpm/tpm2'), { recursive: true });
    await writeFile(join(vmDir(), 'tpm/tpm2/tpm2-00.permall'), 'current state');
    // The last backup holds the vTPM state as prebackup saves it.
    const src = await mkdtemp(join(tmpdir(), 'tpm-'));
    await mkdir(join(src, 'tpm/tpm2'), { recursive: true });
    await writeFile(join(src, 'tpm/tpm2/tpm2-00.permall'), 'saved state');
    await runTool('tar', ['-c', '-z', '-f', join(src, 'tpm.tgz'), '-C', src, 'tpm']);
    (chain[2] as Backup).extra = { 'disk.tpm.0': await readFile(join(src, 'tpm.tgz')) };
    await rm(src, { recursive: true, force: true });
    await image(50, VM, chain);
  });

  it('restores increment 1 of every disk the backup holds: a plain qcow2 disk.0, snapshots and bitmaps gone, disk.1 untouched', async () => {
    expectOk(await tm('grpc', [`host01:${VM_DIR}`, `${VM}`, '50', '1', '-1']));
    const disk0 = join(vmDir(), 'disk.0');
    expect(layout(vmDir()).filter((l) => l.startsWith('disk.'))).toEqual(['disk.0', 'disk.1']);
    expect(await holdsPattern(disk0, 0xa1, 0)).toBe(true);
    expect(await holdsPattern(disk0, 0xc1, MIB)).toBe(true);
    expect(await holdsPattern(disk0, 0x00, 2 * MIB)).toBe(true);
    expect((await imageInfo(disk0, 'qcow2'))['backing-filename']).toBeUndefined();
    expect(await bitmaps(disk0)).toEqual([]);
    expect(await sha256File(join(vmDir(), 'disk.1'))).toBe(untouched);
    // Increment 1 holds no vTPM state: the VM's is left.
    expect(readFileSync(join(vmDir(), 'tpm/tpm2/tpm2-00.permall'), 'utf8')).toBe('current state');
    noLeftovers(vmDir());
  });

  it('increment -1 is the last one; the vTPM state comes back with it', async () => {
    expectOk(await tm('grpc', [`host01:${VM_DIR}`, `${VM}`, '50', '-1', '-1']));
    const disk0 = join(vmDir(), 'disk.0');
    expect(await holdsPattern(disk0, 0xc1, MIB)).toBe(true);
    expect(await holdsPattern(disk0, 0xd1, 2 * MIB)).toBe(true);
    expect(readFileSync(join(vmDir(), 'tpm/tpm2/tpm2-00.permall'), 'utf8')).toBe('saved state');
    noLeftovers(vmDir());
  });

  it('one disk from the FULL backup (sent as it is stored): its bitmap is dropped', async () => {
    expectOk(await tm('grpc', [`host01:${VM_DIR}`, `${VM}`, '50', '0', '0']));
    const disk0 = join(vmDir(), 'disk.0');
    expect(await holdsPattern(disk0, 0xb1, MIB)).toBe(true);
    expect(await holdsPattern(disk0, 0x00, 2 * MIB)).toBe(true);
    expect(await bitmaps(disk0)).toEqual([]);
  });

  it('a disk the backup does not hold, an increment it does not have, a backup of another VM: one line each, nothing changed', async () => {
    const before = await sha256File(join(vmDir(), 'disk.0'));
    expectOneLineFailure(await tm('grpc', [`host01:${VM_DIR}`, `${VM}`, '50', '1', '1']), /holds no disk 1/);
    expectOneLineFailure(await tm('grpc', [`host01:${VM_DIR}`, `${VM}`, '50', '7', '-1']), /no increment 7/);
    expectOneLineFailure(
      await tm('grpc', [`host01:${VM_DIR}`, '81', '50', '1', '-1']),
      /backup of VM 80, not of VM 81/,
    );
    expect(await sha256File(join(vmDir(), 'disk.0'))).toBe(before);
    expect(await sha256File(join(vmDir(), 'disk.1'))).toBe(untouched);
    noLeftovers(vmDir());
  });

  it('a corrupted file on the backup server: one line naming it, the disk intact, no staging; a retry after repair succeeds', async () => {
    const file = local('backup01', `${LOC}/${BACKUP_DS}/${VM}/b1b1b1b1b1b1/disk.0.1`);
    const good = await readFile(file);
    const bad = Buffer.from(good);
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 0xff;
    await writeFile(file, bad);
    const before = await sha256File(join(vmDir(), 'disk.0'));
    expectOneLineFailure(await tm('grpc', [`host01:${VM_DIR}`, `${VM}`, '50', '1', '0']), /disk\.0\.1/);
    expect(await sha256File(join(vmDir(), 'disk.0'))).toBe(before);
    noLeftovers(vmDir());
    await writeFile(file, good);
    expectOk(await tm('grpc', [`host01:${VM_DIR}`, `${VM}`, '50', '1', '0']));
    expect(await holdsPattern(join(vmDir(), 'disk.0'), 0xc1, MIB)).toBe(true);
  });
});

describe('shared mode (TM grpc_qcow2)', () => {
  const VM = 81;
  const VM_DIR = `${LOC}/10/${VM}`;
  const CLONED = `${LOC}/1/restoreclone00000000000000000000`;
  const PERSISTENT = `${LOC}/1/restorepers000000000000000000000`;
  const vmDir = (): string => local('host01', VM_DIR);
  const chain: Backup[] = [
    {
      bid: 'd0d0d0d0d0d0',
      disks: { 0: [{ offset: 0, length: MIB, byte: 0xe1 }], 1: [{ offset: 0, length: MIB, byte: 0xf1 }] },
    },
    {
      bid: 'e1e1e1e1e1e1',
      disks: { 0: [{ offset: MIB, length: MIB, byte: 0xe2 }], 1: [{ offset: MIB, length: MIB, byte: 0xf2 }] },
    },
  ];

  beforeAll(async () => {
    const disks: DiskFixture[] = [
      { diskId: 0, imageId: 0, source: CLONED, format: 'qcow2', tmMad: 'grpc_qcow2', size: SIZE_MB },
      {
        diskId: 1,
        imageId: 1,
        source: PERSISTENT,
        format: 'qcow2',
        tmMad: 'grpc_qcow2',
        persistent: true,
        size: SIZE_MB,
      },
    ];
    await writeVmXml(stack.fixturesDir, {
      id: VM,
      state: STATE_POWEROFF,
      lcmState: LCM_POWEROFF,
      disks,
      history: [{ hostname: 'host01', dsId: 10, tmMad: 'grpc_qcow2' }],
    });
    await makeImage(local('frontend', CLONED), 'qcow2', SIZE_MB, 0x11);
    await makeImage(local('frontend', PERSISTENT), 'qcow2', SIZE_MB, 0x22);
    const shim = (action: string, args: string[]): Promise<ActionRun> =>
      runAction(stack.remotesDir, 'tm', 'grpc_qcow2', action, args);
    expectOk(await shim('clone', [`frontend:${CLONED}`, `host01:${VM_DIR}/disk.0`, `${VM}`, '1']));
    expectOk(await shim('ln', [`frontend:${PERSISTENT}`, `host01:${VM_DIR}/disk.1`, `${VM}`, '1']));
    await writePattern(join(vmDir(), 'disk.0'), 'qcow2', 0x33, 0, MIB);
    await writePattern(join(vmDir(), 'disk.1'), 'qcow2', 0x44, 0, MIB);
    await image(51, VM, chain);
  });

  it('a clone becomes disk.N -> disk.N.snap/0 (standalone); a persistent image is replaced in place with SOURCE.snap/0 -> SOURCE', async () => {
    expectOk(await tm('grpc_qcow2', [`host01:${VM_DIR}`, `${VM}`, '51', '-1', '-1']));
    const disk0 = join(vmDir(), 'disk.0');
    expect(readlinkSync(disk0)).toBe('disk.0.snap/0');
    expect(layout(join(vmDir(), 'disk.0.snap'))).toEqual(['0', 'disk.0.snap -> .']);
    expect((await imageInfo(disk0, 'qcow2'))['backing-filename']).toBeUndefined();
    expect(await holdsPattern(disk0, 0xe1, 0)).toBe(true);
    expect(await holdsPattern(disk0, 0xe2, MIB)).toBe(true);
    expect(await bitmaps(disk0)).toEqual([]);
    expect(await holdsPattern(local('frontend', CLONED), 0x11, 0)).toBe(true);

    const pers = basename(PERSISTENT);
    expect(readlinkSync(join(vmDir(), 'disk.1'))).toBe(`../../1/${pers}.snap/0`);
    expect(layout(`${local('frontend', PERSISTENT)}.snap`)).toEqual([`0 -> ../${pers}`, `${pers}.snap -> .`]);
    expect(await holdsPattern(local('frontend', PERSISTENT), 0xf1, 0)).toBe(true);
    expect(await holdsPattern(local('frontend', PERSISTENT), 0xf2, MIB)).toBe(true);
    expect(await bitmaps(local('frontend', PERSISTENT))).toEqual([]);
    expect(existsSync(join(vmDir(), 'disk.1.snap'))).toBe(false);
    noLeftovers(vmDir());
    expect(
      readdirSync(local('frontend', `${LOC}/1`)).filter((n) => n.includes('.backup') || n.startsWith('.')),
    ).toEqual([]);
  });

  it('the file of the second disk corrupted: nothing is replaced, the copy of the first already received is removed', async () => {
    const file = local('backup01', `${LOC}/${BACKUP_DS}/${VM}/e1e1e1e1e1e1/disk.1.1`);
    const good = await readFile(file);
    const bad = Buffer.from(good);
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 0xff;
    await writeFile(file, bad);
    await writePattern(join(vmDir(), 'disk.0'), 'qcow2', 0x66, 0, MIB);
    const before = await sha256File(join(vmDir(), 'disk.0'));
    expectOneLineFailure(
      await tm('grpc_qcow2', [`host01:${VM_DIR}`, `${VM}`, '51', '-1', '-1']),
      /disk\.1\.1 does not match its SHA256SUMS/,
    );
    expect(await sha256File(join(vmDir(), 'disk.0'))).toBe(before);
    noLeftovers(vmDir());
    await writeFile(file, good);
  });

  it('one disk of the FULL backup: only that disk changes', async () => {
    const persBefore = await sha256File(local('frontend', PERSISTENT));
    expectOk(await tm('grpc_qcow2', [`host01:${VM_DIR}`, `${VM}`, '51', '0', '0']));
    expect(await holdsPattern(join(vmDir(), 'disk.0'), 0x00, MIB)).toBe(true);
    expect(await sha256File(local('frontend', PERSISTENT))).toBe(persBefore);
  });
});

describe('what prebackup made, restored point by point (local mode)', () => {
  const VM = 82;
  const VM_DIR = `${LOC}/0/${VM}`;
  const BIDS = ['f0f0f0f0f0f0', 'f1f1f1f1f1f1', 'f2f2f2f2f2f2'];
  const vmDir = (): string => local('host01', VM_DIR);
  const hook = (action: string, xml: string): Promise<ActionRun> =>
    runAction(
      stack.remotesDir,
      'tm',
      'grpc',
      action,
      [`host01:${VM_DIR}`, '0', `one-${VM}`, '-', `${VM}`, '0'],
      xml,
    );
  const fixture = (last: number): VmFixture => ({
    id: VM,
    deployId: `one-${VM}`,
    lcmState: 70,
    disks: [{ diskId: 0, imageId: 0, format: 'qcow2', tmMad: 'grpc', size: SIZE_MB, target: 'vda' }],
    history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
    backupConfig: { MODE: 'INCREMENT', LAST_INCREMENT_ID: last },
    templateAttrs: { TPM: 'tpm-crb' },
  });
  const xml = (last: number): string => vmXml(fixture(last));

  it('FULL and two CBT increments of a powered-off VM come back byte for byte, with the vTPM state of each point', async () => {
    const disk = join(vmDir(), 'disk.0');
    await makeImage(disk, 'qcow2', SIZE_MB, 0x10);
    await mkdir(join(vmDir(), 'tpm'), { recursive: true });
    const expected: string[] = [];
    const writes = [
      [0, 0x10],
      [MIB, 0x21],
      [3 * MIB, 0x32],
    ] as const;
    for (const [i, [offset, byte]] of writes.entries()) {
      await writePattern(disk, 'qcow2', byte, offset, MIB);
      await writeFile(join(vmDir(), 'tpm/state'), `point ${i}`);
      const raw = join(stack.baseDir, `expected-${VM}-${i}.raw`);
      await runTool('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'raw', disk, raw]);
      expected.push(raw);
      expectOk(await hook('prebackup', xml(i - 1)));
      const stored = await storeBackup(
        join(vmDir(), 'backup'),
        local('backup01', `${LOC}/${BACKUP_DS}/${VM}/${BIDS[i] ?? ''}`),
      );
      expect(stored).toEqual([`disk.0.${i}`, 'disk.tpm.0', 'vm.xml']);
      expectOk(await hook('postbackup', xml(i - 1)));
    }
    await writeVmXml(stack.fixturesDir, fixture(2));
    const chain: Backup[] = BIDS.map((bid) => ({ bid, disks: {} }));
    await writeImageXml(stack.fixturesDir, backupImage({ id: 52, vmId: VM, dsId: BACKUP_DS, chain }));
    // Today's state differs from every point.
    await writePattern(disk, 'qcow2', 0x99, 0, 4 * MIB);
    await writeFile(join(vmDir(), 'tpm/state'), 'today');
    for (const i of [0, 2, 1]) {
      expectOk(await tm('grpc', [`host01:${VM_DIR}`, `${VM}`, '52', `${i}`, '-1']));
      expect(await imagesIdentical(disk, 'qcow2', expected[i] ?? '', 'raw')).toBe(true);
      expect(await bitmaps(disk)).toEqual([]);
      expect(readFileSync(join(vmDir(), 'tpm/state'), 'utf8')).toBe(`point ${i}`);
      noLeftovers(vmDir());
    }
  });
});
