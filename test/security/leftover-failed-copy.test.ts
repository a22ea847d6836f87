// Security review, class 4 (docs/security.md#the-attack-tests): "nothing is left behind". A TM call that passed every check, made the VM
// directory and then failed to copy (here: the destination's filesystem is full) must leave the
// host as it was: no new VM directory, no new datastore directory, no `.monitor` marker, no copy of
// the image's snapshot directory, and never take away a directory that was there before or anything
// that was in it. Driven through the installed shims,
// as oned's one_tm runs them; each host's datastores live on a small tmpfs.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../../cli/src/demo/demo-images.js';
import { runAction } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { writeVmXml } from '../../cli/src/demo/fake-oned/fixtures.js';
import { expectOneLineFailure } from '../support/assertions.js';
import { layout, sha256File } from '../support/files.js';

const DS = ONED_DATASTORE_LOCATION;
/** host01's filesystem holds the mv source (16 MiB of data) but not the 48 MiB image. */
const HOST01_FS_MB = 32;
/** host02's filesystem holds neither. */
const HOST02_FS_MB = 8;
const IMAGE = `${DS}/1/1e4f0000000000000000000000000001`;
const IMAGE_MB = 64;
const IMAGE_DATA_MB = 48;
/** A VM cloned into system datastore 0 on host01, where nothing exists yet. */
const CLONE_VM = 41;
/** A VM whose directory on host01 already holds another disk. */
const BUSY_VM = 42;
/** A VM in system datastore 100 on host01, moved to host02. */
const MV_VM = 43;
/** A small image whose snapshot directory holds a link out of its tree: the data path refuses it. */
const REFUSED_IMAGE = `${DS}/1/1e4f0000000000000000000000000002`;
const REFUSED_VM = 44;

let stack: Stack;
const mounts: string[] = [];

/** A fresh tmpfs of `sizeMb` MiB with a `datastores` directory in it, for one host's datastores. */
async function smallFilesystem(sizeMb: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'one-storage-leftover-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir]);
  mounts.push(dir);
  await mkdir(join(dir, 'datastores'));
  return join(dir, 'datastores');
}

const tree = (host: string): string[] => layout(stack.datastoreDirs[host] ?? '/nonexistent');

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('these tests mount a small tmpfs and need root');
  stack = await Stack.start({
    hostDirs: { host01: await smallFilesystem(HOST01_FS_MB), host02: await smallFilesystem(HOST02_FS_MB) },
  });
  await makeImage(stack.localPath('frontend', IMAGE), 'raw', IMAGE_MB, 0x41);
  await writePattern(stack.localPath('frontend', IMAGE), 'raw', 0x42, 0, IMAGE_DATA_MB * MIB);
  // The image has a snapshot directory (it fits): clone copies it first, then fails on the disk.
  await makeImage(stack.localPath('frontend', `${IMAGE}.snap/0`), 'raw', 1, 0x44);
  await makeImage(stack.localPath('frontend', REFUSED_IMAGE), 'raw', 1, 0x45);
  await makeImage(stack.localPath('frontend', `${REFUSED_IMAGE}.snap/0`), 'raw', 1, 0x46);
  await symlink('/etc/hostname', stack.localPath('frontend', `${REFUSED_IMAGE}.snap/1`));
  for (const [id, source] of [
    [CLONE_VM, IMAGE],
    [BUSY_VM, IMAGE],
    [REFUSED_VM, REFUSED_IMAGE],
  ] as const) {
    await writeVmXml(stack.fixturesDir, {
      id,
      disks: [{ diskId: 0, imageId: 7, source, format: 'raw', tmMad: 'grpc', size: IMAGE_MB }],
      history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
    });
  }
  await writeVmXml(stack.fixturesDir, {
    id: MV_VM,
    disks: [{ diskId: 0, type: 'fs', format: 'raw', size: 16 }],
    history: [{ hostname: 'host02', dsId: 100, tmMad: 'grpc' }],
  });
}, 120_000);

beforeEach(async () => {
  for (const host of ['host01', 'host02']) {
    const dir = stack.datastoreDirs[host];
    if (dir) for (const ds of ['0', '100']) await rm(join(dir, ds), { recursive: true, force: true });
  }
});

afterAll(async () => {
  await stack?.stop();
  for (const dir of mounts) {
    execFileSync('umount', [dir]);
    await rm(dir, { recursive: true, force: true });
  }
});

describe('a copy that fails after the VM directory was made leaves nothing behind', () => {
  it('clone into a new VM directory on a full filesystem: NO_SPACE, and host01 is as before', async () => {
    const before = tree('host01');
    const r = await runAction(stack.remotesDir, 'tm', 'grpc', 'clone', [
      `frontend:${IMAGE}`,
      `host01:${DS}/0/${CLONE_VM}/disk.0`,
      `${CLONE_VM}`,
      '1',
    ]);
    expectOneLineFailure(r, /host01.*no space left/);
    expect(r.stderr).toMatch(/^ERROR: clone: NO_SPACE/m);
    expect(tree('host01')).toEqual(before);
  });

  it('clone into a VM directory that holds another disk: the directory and that disk stay', async () => {
    const other = stack.localPath('host01', `${DS}/0/${BUSY_VM}/disk.1`);
    await mkdir(join(stack.datastoreDirs.host01 ?? '', '0', `${BUSY_VM}`), { recursive: true });
    await writeFile(other, 'another disk of the same VM\n');
    const sum = await sha256File(other);
    const before = tree('host01');
    const r = await runAction(stack.remotesDir, 'tm', 'grpc', 'clone', [
      `frontend:${IMAGE}`,
      `host01:${DS}/0/${BUSY_VM}/disk.0`,
      `${BUSY_VM}`,
      '1',
    ]);
    expectOneLineFailure(r, /host01.*no space left/);
    expect(tree('host01')).toEqual(before);
    expect(await sha256File(other)).toBe(sum);
  });

  it('clone whose transfer the data path refuses mid-way: one line, and host01 is as before', async () => {
    const before = tree('host01');
    const r = await runAction(stack.remotesDir, 'tm', 'grpc', 'clone', [
      `frontend:${REFUSED_IMAGE}`,
      `host01:${DS}/0/${REFUSED_VM}/disk.0`,
      `${REFUSED_VM}`,
      '1',
    ]);
    expectOneLineFailure(r, /etc\/hostname|outside|link/);
    expect(tree('host01')).toEqual(before);
  });

  it('mv host to host onto a full filesystem: NO_SPACE, the source intact, host02 as before', async () => {
    const disk = stack.localPath('host01', `${DS}/100/${MV_VM}/disk.0`);
    await makeImage(disk, 'raw', 16, 0x43);
    await writePattern(disk, 'raw', 0x43, 0, 16 * MIB);
    // The source datastore is monitored from the host, so a move marks the destination's too.
    await writeFile(join(stack.datastoreDirs.host01 ?? '', '100', '.monitor'), 'grpc\n');
    const sum = await sha256File(disk);
    const before = { host01: tree('host01'), host02: tree('host02') };
    const r = await runAction(stack.remotesDir, 'tm', 'grpc', 'mv', [
      `host01:${DS}/100/${MV_VM}`,
      `host02:${DS}/100/${MV_VM}`,
      `${MV_VM}`,
      '100',
    ]);
    expectOneLineFailure(r, /host02.*no space left/);
    expect(r.stderr).toMatch(/^ERROR: mv: NO_SPACE/m);
    expect({ host01: tree('host01'), host02: tree('host02') }).toEqual(before);
    expect(await sha256File(disk)).toBe(sum);
  });
});
