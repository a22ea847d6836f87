// qcow2 snapshots on the two VM directory layouts OpenNebula's drivers leave (qcow2/shared with
// relative backing names, tm/local with bare names): create, revert, delete and convert.
import { existsSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { convertImage } from '../rpc/convert.js';
import { checkClean, storedBackingNames } from '../../../test/support/agent/disk-testing.js';
import { failure, qcow2SnapshotFixture } from '../../../test/support/agent/qcow2-test-fixture.js';
import { ImageFormat } from '../../../proto/gen/onestorage/agent/v1/agent.js';

const {
  agent,
  call,
  ds,
  local,
  expectSlots,
  write,
  create,
  revert,
  remove,
  sharedLayout,
  localLayout,
  snapFile,
} = await qcow2SnapshotFixture();

describe('qcow2 snapshots on a qcow2/shared VM directory (relative names)', () => {
  it('create adds <S+1> over <S> and relinks; a repeat changes nothing', async () => {
    await sharedLayout();
    expect(await create(2)).toEqual({ created: true });
    expect(readlinkSync(local('0/42/disk.0'))).toBe('disk.0.snap/3');
    expect((await storedBackingNames(snapFile(3))).slice(0, 3)).toEqual([
      'disk.0.snap/2',
      'disk.0.snap/1',
      'disk.0.snap/0',
    ]);
    await expectSlots(local('0/42/disk.0'), [0xa0, 1, 2, 3]);
    await checkClean(snapFile(3));
    expect(await create(2)).toEqual({ created: false });
    expect(readlinkSync(local('0/42/disk.0'))).toBe('disk.0.snap/3');
    expect(existsSync(snapFile(4))).toBe(false);
  });

  it('revert discards the active changes, keeps every snapshot, and a repeat gives the same disk', async () => {
    await sharedLayout();
    await write(local('0/42/disk.0'), 0, 0x44);
    await revert(1);
    await expectSlots(local('0/42/disk.0'), [0xa0, 1, 2, 0]);
    await expectSlots(snapFile(1), [0xa0, 1, 2, 0]);
    await expectSlots(snapFile(0), [0xa0, 1, 0, 0]);
    await revert(1);
    await expectSlots(local('0/42/disk.0'), [0xa0, 1, 2, 0]);
    expect(readlinkSync(local('0/42/disk.0'))).toBe('disk.0.snap/2');
    expect((await storedBackingNames(snapFile(2)))[0]).toBe('disk.0.snap/1');
    await revert(0);
    await expectSlots(local('0/42/disk.0'), [0xa0, 1, 0, 0]);
    await checkClean(snapFile(2));
  });

  it('delete rebases every file built on the snapshot (after a revert: the next snapshot and the active layer)', async () => {
    await sharedLayout();
    await create(2); // file 3 over 2: snapshot 2 = [A0,1,2,3]
    await revert(1); // file 3 now over 1: active = [A0,1,2,0]
    await write(local('0/42/disk.0'), 3, 0x33);
    expect(await remove(1, true)).toEqual({ existed: true });
    expect(existsSync(snapFile(1))).toBe(false);
    expect((await storedBackingNames(snapFile(2)))[0]).toBe('disk.0.snap/0');
    expect((await storedBackingNames(snapFile(3)))[0]).toBe('disk.0.snap/0');
    await expectSlots(snapFile(2), [0xa0, 1, 2, 3]);
    await expectSlots(local('0/42/disk.0'), [0xa0, 1, 2, 0x33]);
    await checkClean(snapFile(2));
    await checkClean(snapFile(3));
    expect(await remove(1, true)).toEqual({ existed: false });
    const err = await failure(revert(1));
    expect(err.reason).toBe('NOT_FOUND');
    expect(err.message).toBe(
      'snapshot revert host01:/var/lib/one/datastores/0/42/disk.0 (snapshot 1): snapshot 1 does not exist (no disk.0.snap/1)',
    );
  });

  it('delete of the oldest snapshot rebases onto the image it was cloned from', async () => {
    await sharedLayout();
    await remove(0);
    // The absolute name the layout had is rewritten by the rule: relative, through the self link.
    expect((await storedBackingNames(snapFile(1)))[0]).toBe('disk.0.snap/../../../1/0123abcd');
    await expectSlots(snapFile(1), [0xa0, 1, 2, 0]);
    await expectSlots(local('0/42/disk.0'), [0xa0, 1, 2, 3]);
    await expectSlots(local('1/0123abcd'), [0xa0, 0, 0, 0]);
  });

  it('refuses to revert to or delete the active layer, and a create that would not be the newest', async () => {
    await sharedLayout();
    expect((await failure(revert(2))).reason).toBe('BAD_LAYOUT');
    expect((await failure(remove(2))).reason).toBe('BAD_LAYOUT');
    const err = await failure(create(0));
    expect(err.reason).toBe('ALREADY_EXISTS');
    expect(err.message).toMatch(/runs on disk.0.snap\/2/);
    await expectSlots(local('0/42/disk.0'), [0xa0, 1, 2, 3]);
  });

  it('Convert flattens the chain, and a snapshot through its id', async () => {
    await sharedLayout();
    await convertImage(
      agent,
      {
        source: ds('0/42/disk.0'),
        destination: ds('1/flat'),
        format: ImageFormat.IMAGE_FORMAT_QCOW2,
        sourceFormat: ImageFormat.IMAGE_FORMAT_QCOW2,
        sparse: true,
        snapshot: undefined,
        imageCurrentState: false,
      },
      call,
    );
    expect(await storedBackingNames(local('1/flat'))).toEqual([undefined]);
    await expectSlots(local('1/flat'), [0xa0, 1, 2, 3]);
    await convertImage(
      agent,
      {
        source: ds('0/42/disk.0'),
        destination: ds('1/snap0.raw'),
        format: ImageFormat.IMAGE_FORMAT_RAW,
        sourceFormat: ImageFormat.IMAGE_FORMAT_QCOW2,
        sparse: true,
        snapshot: { snapDir: '', snapId: 0 },
        imageCurrentState: false,
      },
      call,
    );
    await expectSlots(local('1/snap0.raw'), [0xa0, 1, 0, 0], 'raw');
    const same = await failure(
      convertImage(
        agent,
        {
          source: ds('0/42/disk.0'),
          destination: ds('0/42/disk.0.snap/1'),
          format: ImageFormat.IMAGE_FORMAT_QCOW2,
          sourceFormat: ImageFormat.IMAGE_FORMAT_QCOW2,
          sparse: true,
          snapshot: undefined,
          imageCurrentState: false,
        },
        call,
      ),
    );
    expect(same.reason).toBe('INVALID_ARGUMENT');
  });
});

describe('qcow2 snapshots on a tm/local VM directory (bare names)', () => {
  it('create, revert, delete and convert keep bare names and the content', async () => {
    await localLayout();
    await create(2, 'bare');
    expect(readlinkSync(local('0/42/disk.0'))).toBe('disk.0.snap/3');
    expect(await storedBackingNames(snapFile(3))).toEqual(['2', '1', '0', undefined]);
    expect(existsSync(local('0/42/disk.0.snap/disk.0.snap'))).toBe(false);
    await write(snapFile(3), 3, 0x13);
    await revert(0, 'bare');
    await expectSlots(snapFile(3), [0xa0, 1, 0, 0]);
    await remove(1);
    expect(await storedBackingNames(snapFile(2))).toEqual(['0', undefined]);
    await expectSlots(snapFile(2), [0xa0, 1, 2, 3]);
    await remove(0, true);
    expect(await storedBackingNames(snapFile(3))).toEqual([undefined]);
    await expectSlots(snapFile(3), [0xa0, 1, 0, 0]);
    await expectSlots(snapFile(2), [0xa0, 1, 2, 3]);
    await convertImage(
      agent,
      {
        source: ds('0/42/disk.0'),
        destination: ds('1/x'),
        format: ImageFormat.IMAGE_FORMAT_QCOW2,
        sourceFormat: ImageFormat.IMAGE_FORMAT_QCOW2,
        sparse: false,
        snapshot: { snapDir: '', snapId: 2 },
        imageCurrentState: false,
      },
      call,
    );
    await expectSlots(local('1/x'), [0xa0, 1, 2, 3]);
    await checkClean(local('1/x'));
  });
});
