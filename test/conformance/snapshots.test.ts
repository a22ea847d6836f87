// Conformance of the agent's offline snapshot RPCs (SnapshotCreate, SnapshotRevert, SnapshotDelete)
// against a real agent over mutual TLS, in OpenNebula's qcow2 layout (file N holds snapshot N).
import { readlinkSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  BackingStyle,
  ImageFormat,
  type SnapshotCreateRequest,
} from '../../proto/gen/onestorage/agent/v1/agent.js';
import { call, ds } from '../support/agent/agent-fixture.js';
import { expectFailure, expectSameEveryTime, useConformanceAgent } from './support/conformance-agent.js';
import { makeImage } from './support/images.js';

const c = useConformanceAgent();
const { INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION, ALREADY_EXISTS } = grpc.status;

/** A VM directory `0/<vm>` (tracked) with a plain qcow2 disk.0; the request for snapshot `id`. */
async function disk(
  vm: number,
): Promise<(id: number, over?: Partial<SnapshotCreateRequest>) => SnapshotCreateRequest> {
  await makeImage(c.local(`${c.tracker.track(`0/${vm}`)}/disk.0`), 'qcow2', 8);
  return (id, over = {}) => ({
    diskPath: ds(`0/${vm}/disk.0`),
    snapId: id,
    format: ImageFormat.IMAGE_FORMAT_QCOW2,
    snapDir: '',
    backingStyle: BackingStyle.BACKING_STYLE_RELATIVE,
    live: undefined,
    ...over,
  });
}

const create = (r: SnapshotCreateRequest) => call(c.client.snapshotCreate.bind(c.client), r);
const revert = (r: SnapshotCreateRequest) => call(c.client.snapshotRevert.bind(c.client), r);
const remove = (r: SnapshotCreateRequest, active = false) =>
  call(c.client.snapshotDelete.bind(c.client), { ...r, active });

describe('SnapshotCreate', () => {
  it('moves the disk to .snap/0, overlays .snap/1 and relinks; a repeat does nothing (created=false)', async () => {
    const snap = await disk(90);
    expect(await create(snap(0))).toEqual({ created: true });
    expect(await expectSameEveryTime(() => create(snap(0)))).toEqual({ created: false });
    expect(readlinkSync(c.local('0/90/disk.0'))).toBe('disk.0.snap/1');
  });

  it('a missing disk is NOT_FOUND; a higher file already there ALREADY_EXISTS; bad format or path refused', async () => {
    const snap = await disk(91);
    await expectFailure(create(snap(0, { diskPath: ds('0/91/disk.7') })), NOT_FOUND, 'NOT_FOUND');
    await create(snap(0));
    await create(snap(1));
    await expectFailure(create(snap(0)), ALREADY_EXISTS, 'ALREADY_EXISTS');
    await expectFailure(
      create(snap(2, { format: ImageFormat.UNRECOGNIZED })),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /format/,
    );
    await expectFailure(
      create(snap(2, { diskPath: '/etc/passwd' })),
      PERMISSION_DENIED,
      'PATH_OUTSIDE_ROOTS',
    );
  });
});

describe('SnapshotRevert', () => {
  it('replaces the active layer by an empty overlay on the snapshot; a repeat gives the same', async () => {
    const snap = await disk(92);
    await create(snap(0));
    await expectSameEveryTime(() => revert(snap(0)));
    const info = await call(c.client.imageInfo.bind(c.client), {
      path: ds('0/92/disk.0'),
      format: ImageFormat.IMAGE_FORMAT_QCOW2,
    });
    expect(info.layers.map((l) => l.backingFilename)).toEqual(['disk.0.snap/0', '']);
  });

  it('a missing snapshot is NOT_FOUND naming its id; the active layer itself BAD_LAYOUT', async () => {
    const snap = await disk(93);
    await create(snap(0));
    await expectFailure(revert(snap(41)), NOT_FOUND, 'NOT_FOUND', /snapshot 41/);
    await expectFailure(revert(snap(1)), FAILED_PRECONDITION, 'BAD_LAYOUT');
  });
});

describe('SnapshotDelete', () => {
  it('rebases what the snapshot backs and removes it; a repeat succeeds with existed=false', async () => {
    const snap = await disk(94);
    await create(snap(0));
    await create(snap(1));
    expect(await remove(snap(0))).toEqual({ existed: true });
    expect(await expectSameEveryTime(() => remove(snap(0)))).toEqual({ existed: false });
  });

  it('the active layer is BAD_LAYOUT; a bad path is refused', async () => {
    const snap = await disk(95);
    await create(snap(0));
    await expectFailure(remove(snap(1), true), FAILED_PRECONDITION, 'BAD_LAYOUT');
    await expectFailure(
      remove(snap(0, { diskPath: '/etc/passwd' })),
      PERMISSION_DENIED,
      'PATH_OUTSIDE_ROOTS',
    );
  });
});
