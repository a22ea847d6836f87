// qcow2 snapshot corner cases: plain disks and full-copy snapshots, skipped ids, live-delete
// pointers, self-referring chains, persistent images and refusals of paths outside the roots.
import { existsSync, lstatSync, readlinkSync, symlinkSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { convertImage } from '../rpc/convert.js';
import { snapshotCreate } from '../rpc/snapshot-create.js';
import { checkClean, qemuImg, storedBackingNames } from '../../../test/support/agent/disk-testing.js';
import { SIZE_MB, failure, qcow2SnapshotFixture } from '../../../test/support/agent/qcow2-test-fixture.js';
import { BackingStyle, ImageFormat } from '../../../proto/gen/onestorage/agent/v1/agent.js';

const {
  base,
  agent,
  call,
  ds,
  local,
  expectSlots,
  write,
  req,
  create,
  revert,
  remove,
  sharedLayout,
  localLayout,
  snapFile,
} = await qcow2SnapshotFixture();

describe('qcow2 snapshot corner cases', () => {
  it('turns a plain-file disk into the .snap/0 structure on the first snapshot', async () => {
    await qemuImg('create', '-q', '-f', 'qcow2', local('0/42/disk.0'), `${SIZE_MB}M`);
    await write(local('0/42/disk.0'), 0, 0x10);
    await create(0);
    expect(readlinkSync(local('0/42/disk.0'))).toBe('disk.0.snap/1');
    expect(readlinkSync(local('0/42/disk.0.snap/disk.0.snap'))).toBe('.');
    expect(lstatSync(snapFile(0)).isFile()).toBe(true);
    expect((await storedBackingNames(snapFile(1)))[0]).toBe('disk.0.snap/0');
    await write(local('0/42/disk.0'), 1, 0x11);
    await revert(0);
    await expectSlots(local('0/42/disk.0'), [0x10, 0]);
  });

  it('keeps tm/ssh full-copy snapshots beside a plain disk usable', async () => {
    await qemuImg('create', '-q', '-f', 'qcow2', local('0/42/disk.0'), `${SIZE_MB}M`);
    await write(local('0/42/disk.0'), 0, 0x10);
    mkdirSync(local('0/42/disk.0.snap'));
    await runTool('cp', ['--sparse=always', local('0/42/disk.0'), snapFile(0)]);
    await write(local('0/42/disk.0'), 1, 0x11);
    await revert(0);
    await expectSlots(local('0/42/disk.0'), [0x10, 0]);
    await create(1);
    await remove(0);
    await expectSlots(local('0/42/disk.0'), [0x10, 0]);
  });

  it('gives a skipped id to the active file, so file N still holds snapshot N', async () => {
    await localLayout(); // snapshots 0, 1; active 2
    await remove(1);
    await create(3, 'bare'); // ids 2 was used by a failed call in oned
    expect(readlinkSync(local('0/42/disk.0'))).toBe('disk.0.snap/4');
    expect(existsSync(snapFile(2))).toBe(false);
    await write(local('0/42/disk.0.snap/4'), 0, 0x77);
    await revert(3, 'bare');
    await expectSlots(snapFile(4), [0xa0, 1, 2, 3]);
    expect(await storedBackingNames(snapFile(4))).toEqual(['3', '0', undefined]);
  });

  it('follows <id>.current pointers left by a live delete', async () => {
    await sharedLayout();
    await create(2); // files 0,1,2,3
    // What a live delete of snapshot 1 leaves: 2 committed into 1, 3 rebased on 1, 2.current -> 1.
    await qemuImg('commit', '-q', snapFile(2));
    await runTool('qemu-img', ['rebase', '-u', '-F', 'qcow2', '-b', 'disk.0.snap/1', '3'], {
      cwd: local('0/42/disk.0.snap'),
    });
    rmSync(snapFile(2));
    writeFileSync(local('0/42/disk.0.snap/2.current'), `${snapFile(1)}\n`);
    expect((await failure(revert(1))).reason).toBe('NOT_FOUND'); // file 1 now holds snapshot 2
    await revert(2);
    await expectSlots(local('0/42/disk.0'), [0xa0, 1, 2, 3]);
    await remove(2, true);
    expect(existsSync(snapFile(1))).toBe(false);
    expect(existsSync(local('0/42/disk.0.snap/2.current'))).toBe(false);
    await expectSlots(local('0/42/disk.0'), [0xa0, 1, 2, 3]);
    await expectSlots(snapFile(0), [0xa0, 1, 0, 0]);
  });

  it('never builds on a chain that refers to itself', async () => {
    await localLayout();
    await runTool('qemu-img', ['rebase', '-u', '-F', 'qcow2', '-b', '1', '0'], {
      cwd: local('0/42/disk.0.snap'),
    });
    const err = await failure(create(2, 'bare'));
    expect(err.reason).toBe('BAD_LAYOUT');
    expect(err.message).toMatch(/refers to itself/);
    expect(existsSync(snapFile(3))).toBe(false);
    expect(readlinkSync(local('0/42/disk.0'))).toBe('disk.0.snap/2');
  });

  it("reads a disk link OpenNebula wrote as oned's path on a host whose root is elsewhere", async () => {
    const image = local('1/onedlink');
    await qemuImg('create', '-q', '-f', 'qcow2', image, `${SIZE_MB}M`);
    await write(image, 0, 0x60);
    mkdirSync(`${image}.snap`);
    symlinkSync('../onedlink', `${image}.snap/0`);
    symlinkSync('.', `${image}.snap/onedlink.snap`);
    // Names DATASTORE_LOCATION, which this agent maps elsewhere: the kernel cannot follow it here.
    symlinkSync(ds('1/onedlink.snap/0'), local('0/42/disk.0'));
    const extra = { snapDir: ds('1/onedlink.snap') };
    await create(0, 'relative', extra);
    expect(readlinkSync(local('0/42/disk.0'))).toBe('../../1/onedlink.snap/1');
    expect((await storedBackingNames(`${image}.snap/1`))[0]).toBe('../../1/onedlink.snap/0');
    await write(local('0/42/disk.0'), 1, 0x61);
    await expectSlots(local('0/42/disk.0'), [0x60, 0x61]);
    await expectSlots(image, [0x60, 0]);
  });

  it('persistent image (shared, CLONE=NO): revert and delete never touch the image', async () => {
    const image = local('1/persist');
    await qemuImg('create', '-q', '-f', 'qcow2', image, `${SIZE_MB}M`);
    await write(image, 0, 0x50);
    mkdirSync(`${image}.snap`);
    symlinkSync(image, `${image}.snap/0`);
    symlinkSync('.', `${image}.snap/persist.snap`);
    symlinkSync(`${image}.snap/0`, local('0/42/disk.0'));
    const extra = { snapDir: ds('1/persist.snap') };
    // The #6663 shape: the disk runs on .snap/0 -> IMAGE; reverting "to 0" must not overwrite the image.
    expect((await failure(revert(0, 'relative', extra))).reason).toBe('BAD_LAYOUT');
    await create(0, 'relative', extra);
    // New names are relative, from the VM directory the disk is opened through (security review, class 6).
    expect(readlinkSync(local('0/42/disk.0'))).toBe('../../1/persist.snap/1');
    expect((await storedBackingNames(`${image}.snap/1`))[0]).toBe('../../1/persist.snap/0');
    await write(local('0/42/disk.0'), 1, 0x51);
    await revert(0, 'relative', extra);
    await revert(0, 'relative', extra);
    await expectSlots(local('0/42/disk.0'), [0x50, 0]);
    await write(local('0/42/disk.0'), 1, 0x52);
    await remove(0, true, extra);
    expect(existsSync(`${image}.snap/0`)).toBe(false);
    expect(lstatSync(image).isFile()).toBe(true);
    await expectSlots(image, [0x50, 0]);
    await expectSlots(local('0/42/disk.0'), [0x50, 0x52]);
    expect(await storedBackingNames(image)).toEqual([undefined]);
    await checkClean(image);
  });

  it('names the bad field and refuses paths outside the roots', async () => {
    await sharedLayout();
    const bad = await failure(snapshotCreate(agent, { ...req(2), format: ImageFormat.UNRECOGNIZED }, call));
    expect(bad.reason).toBe('INVALID_ARGUMENT');
    expect(bad.message).toBe('snapshot create on host01: format must be one of raw, qcow2 (got -1)');
    expect(
      (
        await failure(
          snapshotCreate(agent, { ...req(2), backingStyle: BackingStyle.BACKING_STYLE_UNSPECIFIED }, call),
        )
      ).message,
    ).toMatch(/backing_style must be one of relative, bare/);
    expect((await failure(create(2, 'relative', { diskPath: '/etc/passwd' }))).reason).toBe(
      'PATH_OUTSIDE_ROOTS',
    );
    expect((await failure(create(2, 'relative', { snapDir: '/tmp/x.snap' }))).reason).toBe(
      'PATH_OUTSIDE_ROOTS',
    );
    symlinkSync('/etc', local('0/42/disk.1'));
    expect((await failure(create(0, 'relative', { diskPath: ds('0/42/disk.1') }))).reason).toBe(
      'PATH_OUTSIDE_ROOTS',
    );
    expect((await failure(create(0, 'relative', { diskPath: ds('0/42/disk.9') }))).reason).toBe('NOT_FOUND');
  });

  it('refuses a chain whose backing file lies outside the roots', async () => {
    const outside = join(base, 'outside.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', outside, `${SIZE_MB}M`);
    await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', outside, local('0/42/disk.0'));
    expect((await failure(create(0))).reason).toBe('PATH_OUTSIDE_ROOTS');
    const err = await failure(
      convertImage(
        agent,
        {
          source: ds('0/42/disk.0'),
          destination: ds('1/leak'),
          format: ImageFormat.IMAGE_FORMAT_RAW,
          sourceFormat: ImageFormat.IMAGE_FORMAT_QCOW2,
          sparse: true,
          snapshot: undefined,
          imageCurrentState: false,
        },
        call,
      ),
    );
    expect(err.reason).toBe('PATH_OUTSIDE_ROOTS');
    expect(existsSync(local('1/leak'))).toBe(false);
  });
});
