import { existsSync, lstatSync, mkdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import type { SnapshotCreateRequest } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { convertImage } from '../rpc/convert.js';
import { snapshotCreate } from '../rpc/snapshot-create.js';
import { snapshotDelete } from '../rpc/snapshot-delete.js';
import { snapshotRevert } from '../rpc/snapshot-revert.js';
import { LOCATION, makeTempDir } from '../testing/agent-fixture.js';
import {
  KIB,
  checkClean,
  localAgent,
  patternMismatches,
  qemuImg,
  storedBackingNames,
  writePattern,
} from '../testing/disk-testing.js';

const SLOT = 64 * KIB;
const SIZE_MB = 4;
const base = await makeTempDir('qcow2-snapshots-');
const root = join(base, 'datastores');
const { agent, call } = localAgent(root);
const ds = (rel: string): string => `${LOCATION}/${rel}`;
const local = (rel: string): string => join(root, rel);

afterAll(() => rmSync(base, { recursive: true, force: true }));
beforeEach(() => {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(local('0/42'), { recursive: true });
  mkdirSync(local('1'), { recursive: true });
});

/** Slot contents as bytes: slot i holds byte[i] (0 = never written). */
async function expectSlots(file: string, bytes: readonly number[], format = 'qcow2'): Promise<void> {
  const ranges = bytes.map((byte, i) => ({ offset: i * SLOT, length: SLOT, byte }));
  expect(await patternMismatches(file, format, ranges), file).toEqual([]);
}

async function write(file: string, slot: number, byte: number): Promise<void> {
  await writePattern(file, 'qcow2', byte, slot * SLOT, SLOT);
}

function req(
  id: number,
  style: 'relative' | 'bare' = 'relative',
  extra: Partial<SnapshotCreateRequest> = {},
) {
  return {
    diskPath: ds('0/42/disk.0'),
    snapId: id,
    format: 'qcow2',
    snapDir: '',
    backingStyle: style,
    ...extra,
  };
}

const create = (id: number, style?: 'relative' | 'bare', extra?: Partial<SnapshotCreateRequest>) =>
  snapshotCreate(agent, req(id, style, extra), call);
const revert = (id: number, style?: 'relative' | 'bare', extra?: Partial<SnapshotCreateRequest>) =>
  snapshotRevert(agent, req(id, style, extra), call);
const remove = (id: number, active = false, extra?: Partial<SnapshotCreateRequest>) =>
  snapshotDelete(agent, { ...req(id, 'relative', extra), active }, call);

async function failure(p: Promise<unknown>): Promise<StorageError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

/**
 * A VM directory exactly as OpenNebula's qcow2/shared driver leaves it after clone + two
 * snap_create (reference 2.1): disk.0 -> disk.0.snap/2, self link, relative backing names, file 0
 * an overlay on the image. Slots: image 0xA0 in slot 0; 0x01 before snapshot 0, 0x02 before 1, 0x03 now.
 */
async function sharedLayout(): Promise<void> {
  const image = local('1/0123abcd');
  await qemuImg('create', '-q', '-f', 'qcow2', image, `${SIZE_MB}M`);
  await write(image, 0, 0xa0);
  const snap = local('0/42/disk.0.snap');
  mkdirSync(snap);
  symlinkSync('.', join(snap, 'disk.0.snap'));
  await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'backing_fmt=qcow2', '-b', image, join(snap, '0'));
  symlinkSync('disk.0.snap/0', local('0/42/disk.0'));
  await write(local('0/42/disk.0'), 1, 0x01);
  for (const id of [0, 1]) {
    await runTool(
      'qemu-img',
      ['create', '-q', '-f', 'qcow2', '-o', 'backing_fmt=qcow2', '-b', `disk.0.snap/${id}`, `${id + 1}`],
      {
        cwd: snap,
      },
    );
    rmSync(local('0/42/disk.0'));
    symlinkSync(`disk.0.snap/${id + 1}`, local('0/42/disk.0'));
    await write(local('0/42/disk.0'), id + 2, id + 2);
  }
}

/** The same as tm/local lays it out: bare backing names, file 0 standalone, no self link. */
async function localLayout(): Promise<void> {
  const snap = local('0/42/disk.0.snap');
  mkdirSync(snap);
  await qemuImg('create', '-q', '-f', 'qcow2', join(snap, '0'), `${SIZE_MB}M`);
  await write(join(snap, '0'), 0, 0xa0);
  await write(join(snap, '0'), 1, 0x01);
  for (const id of [0, 1]) {
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', `${id}`, `${id + 1}`], {
      cwd: snap,
    });
    rmSync(local('0/42/disk.0'), { force: true });
    symlinkSync(`disk.0.snap/${id + 1}`, local('0/42/disk.0'));
    await write(join(snap, `${id + 1}`), id + 2, id + 2);
  }
}

const snapFile = (id: number): string => local(`0/42/disk.0.snap/${id}`);

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
    expect((await storedBackingNames(snapFile(1)))[0]).toBe(local('1/0123abcd'));
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
        format: 'qcow2',
        sparse: true,
        snapshot: undefined,
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
        format: 'raw',
        sparse: true,
        snapshot: { snapDir: '', snapId: 0 },
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
          format: 'qcow2',
          sparse: true,
          snapshot: undefined,
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
        format: 'qcow2',
        sparse: false,
        snapshot: { snapDir: '', snapId: 2 },
      },
      call,
    );
    await expectSlots(local('1/x'), [0xa0, 1, 2, 3]);
    await checkClean(local('1/x'));
  });
});

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
    expect(readlinkSync(local('0/42/disk.0'))).toBe(`${image}.snap/1`);
    expect((await storedBackingNames(`${image}.snap/1`))[0]).toBe(`${image}.snap/0`);
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
    const bad = await failure(snapshotCreate(agent, { ...req(2), format: 'vmdk' }, call));
    expect(bad.reason).toBe('INVALID_ARGUMENT');
    expect(bad.message).toBe('snapshot create on host01: format must be one of raw, qcow2 (got "vmdk")');
    expect((await failure(snapshotCreate(agent, { ...req(2), backingStyle: '' }, call))).message).toMatch(
      /backing_style must be one of relative, bare/,
    );
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
          format: 'raw',
          sparse: true,
          snapshot: undefined,
        },
        call,
      ),
    );
    expect(err.reason).toBe('PATH_OUTSIDE_ROOTS');
    expect(existsSync(local('1/leak'))).toBe(false);
  });
});
