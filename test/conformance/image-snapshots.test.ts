// Conformance of the agent's image snapshot RPCs (ImageSnapshotDelete, ImageSnapshotRevert,
// ImageSnapshotFlatten) against a real agent over mutual TLS, on a persistent image's snap dir as
// the TM drivers leave it (docs/image-datastore.md#snapshots-of-persistent-images).
import { existsSync, lstatSync, writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ImageFormat, type ImageSnapshotRequest } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { call } from '../support/agent/agent-fixture.js';
import {
  type Built,
  currentFile,
  layoutBuilder,
  slotMismatches,
  snapshotSlots,
} from '../support/agent/image-snapshot-layouts.js';
import { treeState } from '../support/agent/image-snapshot-state.js';
import { ds } from '../support/agent/agent-fixture.js';
import {
  REPEATS,
  expectFailure,
  expectSameEveryTime,
  repeated,
  useConformanceAgent,
} from './support/conformance-agent.js';

const c = useConformanceAgent();
const { INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION } = grpc.status;
const L = () => layoutBuilder(c.client, c.root);

/** Registers everything an image `name` (and the VM `vm` that built it) may leave, for cleanup. */
function tracked(name: string, vm?: number): string {
  for (const rel of [`1/${name}`, `1/${name}.snap`, `1/${name}.md5sum`]) c.tracker.track(rel);
  if (vm !== undefined) c.tracker.track(`0/${vm}`);
  return name;
}

const req = (b: Pick<Built, 'source' | 'format'>, snapId: number): ImageSnapshotRequest => ({
  source: b.source,
  format: b.format === 'raw' ? ImageFormat.IMAGE_FORMAT_RAW : ImageFormat.IMAGE_FORMAT_QCOW2,
  snapId,
});
const remove = (r: ImageSnapshotRequest) => call(c.client.imageSnapshotDelete.bind(c.client), r);
const revert = (r: ImageSnapshotRequest) => call(c.client.imageSnapshotRevert.bind(c.client), r);
const flatten = (r: ImageSnapshotRequest) => call(c.client.imageSnapshotFlatten.bind(c.client), r);
const once = (first: unknown) => [first, ...Array(REPEATS - 1).fill({ changed: false })];

/** The refusals every image snapshot RPC shares: the bad field named, nothing touched. */
async function expectFieldRefusals(
  rpc: (r: ImageSnapshotRequest) => Promise<unknown>,
  b: Built,
): Promise<void> {
  await expectFailure(
    rpc({ ...req(b, 0), format: ImageFormat.IMAGE_FORMAT_UNSPECIFIED }),
    INVALID_ARGUMENT,
    'INVALID_ARGUMENT',
    /format/,
  );
  await expectFailure(rpc({ ...req(b, 0), source: '' }), INVALID_ARGUMENT, 'INVALID_ARGUMENT', /source/);
  await expectFailure(
    rpc({ ...req(b, 0), source: '/etc/passwd' }),
    PERMISSION_DENIED,
    'PATH_OUTSIDE_ROOTS',
    /source/,
  );
  await expectFailure(
    rpc(req({ source: ds('1/absent'), format: 'qcow2' }, 0)),
    NOT_FOUND,
    'NOT_FOUND',
    /1\/absent/,
  );
}

describe('ImageSnapshotDelete', () => {
  it('removes the snapshot file, its .current and <source>.md5sum; a repeat succeeds with changed=false', async () => {
    const b = await L().oneSharedCurrent(tracked('cdel1'));
    await revert(req(b, 0));
    writeFileSync(`${b.local}.md5sum`, 'cached\n');
    expect(await repeated(() => remove(req(b, 2)))).toEqual(once({ changed: true }));
    for (const gone of ['.snap/1', '.snap/2.current', '.md5sum'])
      expect(existsSync(`${b.local}${gone}`)).toBe(false);
    expect(await slotMismatches(b.snapshotFile(0), 'qcow2', snapshotSlots(0))).toEqual([]);
  });

  it('full copies: the copy goes, SOURCE stays', async () => {
    const b = await L().copies(tracked('cdel2'), 'raw');
    const before = await treeState(b.local);
    expect(await repeated(() => remove(req(b, 0)))).toEqual(once({ changed: true }));
    expect(existsSync(`${b.local}.snap/0`)).toBe(false);
    expect((await treeState(b.local))['cdel2']).toBe(before['cdel2']);
  });

  it('a snapshot another file is built on, or the active layer: FAILED_PRECONDITION (BAD_LAYOUT) naming it, nothing changed', async () => {
    const b = await L().oneShared(tracked('cdel3'));
    const before = await treeState(b.local);
    await expectFailure(
      remove(req(b, 0)),
      FAILED_PRECONDITION,
      'BAD_LAYOUT',
      /cdel3\.snap\/0 is the backing file of cdel3\.snap\/1/,
    );
    await expectFailure(
      remove(req(b, 2)),
      FAILED_PRECONDITION,
      'BAD_LAYOUT',
      /cdel3\.snap\/2 is the image's active layer/,
    );
    expect(await treeState(b.local)).toEqual(before);
  });

  it('refuses bad fields and a missing image; an absent snapshot is changed=false', async () => {
    const b = await L().copies(tracked('cdel4'), 'qcow2');
    await expectFieldRefusals(remove, b);
    expect(await remove(req(b, 9))).toEqual({ changed: false });
  });
});

describe('ImageSnapshotRevert', () => {
  it('a chain gets a new empty overlay on the snapshot as its active layer; a repeat gives the same state', async () => {
    const b = await L().oneLocal(tracked('crev1'));
    writeFileSync(`${b.local}.md5sum`, 'cached\n');
    const state = await expectSameEveryTime(async () => [await revert(req(b, 0)), await treeState(b.local)]);
    expect(state[0]).toEqual({ changed: true });
    expect(await slotMismatches(currentFile(b), 'qcow2', snapshotSlots(0))).toEqual([]);
    expect(existsSync(`${b.local}.md5sum`)).toBe(false);
  });

  it('full copies: SOURCE becomes a copy of the snapshot', async () => {
    const b = await L().oursShared(tracked('crev2', 61), 61, 'raw');
    await expectSameEveryTime(() => revert(req(b, 1)));
    expect(lstatSync(b.local).isFile()).toBe(true);
    expect(await slotMismatches(b.local, 'raw', snapshotSlots(1))).toEqual([]);
  });

  it('a missing snapshot is NOT_FOUND naming it; the active layer or an unknown layout BAD_LAYOUT', async () => {
    const b = await L().oneShared(tracked('crev3'));
    await expectFailure(revert(req(b, 5)), NOT_FOUND, 'NOT_FOUND', /snapshot 5 does not exist/);
    await expectFailure(
      revert(req(b, 2)),
      FAILED_PRECONDITION,
      'BAD_LAYOUT',
      /crev3\.snap\/2 is the active layer/,
    );
    writeFileSync(`${b.local}.snap/1.current`, 'crev3.snap/2\n');
    await expectFailure(revert(req(b, 0)), FAILED_PRECONDITION, 'BAD_LAYOUT', /names the active layer/);
    await expectFieldRefusals(revert, b);
  });
});

describe('ImageSnapshotFlatten', () => {
  it('SOURCE becomes a standalone file holding the snapshot, the snap dir goes; a repeat is changed=false', async () => {
    const b = await L().mixedSaved(tracked('cflat1', 62), 62);
    writeFileSync(`${b.local}.md5sum`, 'cached\n');
    expect(await repeated(() => flatten(req(b, 0)))).toEqual(once({ changed: true }));
    expect(lstatSync(b.local).isFile()).toBe(true);
    expect(await slotMismatches(b.local, 'qcow2', snapshotSlots(0))).toEqual([]);
    expect(existsSync(`${b.local}.snap`)).toBe(false);
    expect(existsSync(`${b.local}.md5sum`)).toBe(false);
  });

  it('a missing snapshot while the snap dir exists is NOT_FOUND; an unknown layout BAD_LAYOUT; nothing changed', async () => {
    const b = await L().oursLocal(tracked('cflat2', 63), 63);
    const before = await treeState(b.local);
    await expectFailure(flatten(req(b, 4)), NOT_FOUND, 'NOT_FOUND', /snapshot 4 does not exist/);
    await expectFailure(flatten(req({ ...b, format: 'raw' }, 0)), FAILED_PRECONDITION, 'BAD_LAYOUT');
    expect(await treeState(b.local)).toEqual(before);
    await expectFieldRefusals(flatten, b);
  });
});
