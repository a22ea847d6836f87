/**
 * A local agent over a scratch datastore root for the qcow2 snapshot tests, with the two VM
 * directory layouts OpenNebula's drivers leave and helpers that call the snapshot RPCs on disk.0
 * of VM 42. qcow2SnapshotFixture() makes the root and registers the hooks (each test starts from
 * an empty 0/42 and 1); call it once at the top of a test file.
 */
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeEach, expect } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import {
  BackingStyle,
  ImageFormat,
  type SnapshotCreateRequest,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { snapshotCreate } from '../../../agent/src/rpc/snapshot-create.js';
import { snapshotDelete } from '../../../agent/src/rpc/snapshot-delete.js';
import { snapshotRevert } from '../../../agent/src/rpc/snapshot-revert.js';
import { ds, makeTempDir } from './agent-fixture.js';
import { KIB, localAgent, patternMismatches, qemuImg, writePattern } from './disk-testing.js';

const SLOT = 64 * KIB;
export const SIZE_MB = 4;

export async function failure(p: Promise<unknown>): Promise<StorageError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

export async function qcow2SnapshotFixture() {
  const base = await makeTempDir('qcow2-snapshots-');
  const root = join(base, 'datastores');
  const { agent, call } = localAgent(root);
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
      format: ImageFormat.IMAGE_FORMAT_QCOW2,
      snapDir: '',
      backingStyle: style === 'bare' ? BackingStyle.BACKING_STYLE_BARE : BackingStyle.BACKING_STYLE_RELATIVE,
      // The proto field for snap_create_live; these offline tests never set it.
      live: undefined,
      ...extra,
    };
  }

  const create = (id: number, style?: 'relative' | 'bare', extra?: Partial<SnapshotCreateRequest>) =>
    snapshotCreate(agent, req(id, style, extra), call);
  const revert = (id: number, style?: 'relative' | 'bare', extra?: Partial<SnapshotCreateRequest>) =>
    snapshotRevert(agent, req(id, style, extra), call);
  const remove = (id: number, active = false, extra?: Partial<SnapshotCreateRequest>) =>
    snapshotDelete(agent, { ...req(id, 'relative', extra), active }, call);

  /**
   * A VM directory exactly as OpenNebula's qcow2/shared driver leaves it after clone + two
   * snap_create (docs/opennebula/snapshots.md#qcow2-layout): disk.0 -> disk.0.snap/2, self link, relative backing names, file 0
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

  return {
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
  };
}
