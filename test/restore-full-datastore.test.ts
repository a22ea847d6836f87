// Restoring into a full datastore (docs/backups.md#tm-restore, #restoring-from-the-repository):
// the front-end's image datastore and host01's system datastore share a small tmpfs, the backup
// does not fit, and both ways back (the image datastore's cp of a grpc_backup:// URL and TM
// restore) must fail in one line, leave nothing half-written and the VM's disk as it was, then
// succeed once there is room.
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync, statfsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage } from '../cli/src/demo/demo-images.js';
import { writeDatastoreXml, writeVmXml } from '../cli/src/demo/fake-oned/fixtures.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { formatBackupUrl } from '../common/src/backups/backup-url.js';
import { expectOk, expectOneLineFailure, holdsPattern } from './support/assertions.js';
import { type Backup, startRestoreStack, storeBackupImage } from './support/backup-repository.js';
import { actionData } from './support/ds-action-data.js';
import { dsAction, expectFailure, expectSuccess } from './support/ds-image-stack.js';
import { sha256File } from './support/files.js';

const LOC = ONED_DATASTORE_LOCATION;
const BACKUP_DS = 100;
const IMAGE_DS = 1;
const VM = 90;
const VM_DIR = `${LOC}/0/${VM}`;
/** The restored disk holds this much data; a full datastore has less room than that left. */
const SIZE_MB = 24;
const FREE_WHEN_FULL_MB = 12;
const FS_MB = 160;

const chain: Backup[] = [
  { bid: 'd0d0d0d0d0d0', disks: { 0: [{ offset: 0, length: SIZE_MB * MIB, byte: 0x5a }] } },
  { bid: 'e1e1e1e1e1e1', disks: { 0: [{ offset: MIB, length: MIB, byte: 0x6b }] } },
];

let smallFs = '';
let stack: Stack;
const local = (path: string): string => stack.localPath('host01', path);
const tmRestore = (): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc', 'restore', [`host01:${VM_DIR}`, `${VM}`, '60', '1', '0']);
/** Fills the tmpfs (a ballast file beside the datastores) until FREE_WHEN_FULL_MB are left. */
const fill = (): void => {
  const st = statfsSync(smallFs);
  const free = st.bavail * st.bsize;
  execFileSync('fallocate', ['-l', String(free - FREE_WHEN_FULL_MB * MIB), join(smallFs, 'ballast')]);
};
const makeRoom = (): void => rmSync(join(smallFs, 'ballast'));
/** Everything in the image datastore's directory and the VM directory but the VM's own disk. */
const strays = (): string[] => [
  ...readdirSync(local(`${LOC}/${IMAGE_DS}`)),
  ...readdirSync(local(VM_DIR)).filter((n) => n !== 'disk.0'),
];

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('these tests mount a small tmpfs and need root');
  smallFs = await mkdtemp(join(tmpdir(), 'one-storage-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${FS_MB}m`, 'tmpfs', smallFs]);
  const dir = join(smallFs, 'datastores');
  await mkdir(dir);
  stack = await startRestoreStack(dir, BACKUP_DS);
  await writeDatastoreXml(stack.fixturesDir, { id: IMAGE_DS, dsMad: 'grpc', tmMad: 'grpc' });
  await storeBackupImage(stack, { id: 60, vmId: VM, dsId: BACKUP_DS, sizeMb: SIZE_MB, chain });
  await writeVmXml(stack.fixturesDir, {
    id: VM,
    state: 8,
    lcmState: 0,
    disks: [{ diskId: 0, imageId: 0, source: `${LOC}/1/img0`, format: 'qcow2', tmMad: 'grpc' }],
    history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
  });
  await makeImage(local(`${VM_DIR}/disk.0`), 'qcow2', SIZE_MB, 0x11);
  await mkdir(local(`${LOC}/${IMAGE_DS}`), { recursive: true });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (smallFs) {
    execFileSync('umount', [smallFs]);
    await rm(smallFs, { recursive: true, force: true });
  }
});

describe('restore into a full datastore', () => {
  it('TM restore: one no-space line, the disk as it was, no staging file; with room a retry restores', async () => {
    const before = await sha256File(local(`${VM_DIR}/disk.0`));
    fill();
    expectOneLineFailure(await tmRestore(), /no space left on the destination filesystem$/);
    expect(await sha256File(local(`${VM_DIR}/disk.0`))).toBe(before);
    expect(strays()).toEqual([]);
    makeRoom();
    expectOk(await tmRestore());
    expect(await holdsPattern(local(`${VM_DIR}/disk.0`), 0x5a, 0)).toBe(true);
    expect(await holdsPattern(local(`${VM_DIR}/disk.0`), 0x6b, MIB)).toBe(true);
  }, 120_000);

  it("the image datastore's cp of the backup: one no-space line, no file left; with room a retry registers it", async () => {
    const path = formatBackupUrl({
      dsId: BACKUP_DS,
      backupJobId: undefined,
      chain: chain.map((b, inc) => ({ inc, bid: b.bid })),
      path: `${LOC}/${BACKUP_DS}/${VM}/${chain[1]?.bid ?? ''}/disk.0.1`,
    });
    const cp = (): Promise<ActionRun> =>
      dsAction(
        stack,
        'cp',
        61,
        actionData({ image: { id: 61, path, format: 'raw', size: SIZE_MB }, datastore: { id: IMAGE_DS } }),
      );
    fill();
    expectFailure(await cp(), /no space left on the destination filesystem$/);
    expect(strays()).toEqual([]);
    makeRoom();
    const [source] = expectSuccess(await cp())
      .trimEnd()
      .split(' ');
    expect(await holdsPattern(local(source as string), 0x6b, MIB)).toBe(true);
  }, 120_000);
});
