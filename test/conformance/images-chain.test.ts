// Conformance of the agent's RPCs that lay out a disk's chain from an image (CloneOverlay,
// LinkImage, CopyImageChain, SaveImageChain, RelinkDisk) against a real agent over mutual TLS: each
// documented repeat made REPEATS times, each documented error reason provoked. The RPCs that make or
// read one image are in images-create.test.ts.
import { readlinkSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { call, ds } from '../support/agent/agent-fixture.js';
import { expectFailure, expectSameEveryTime, useConformanceAgent } from './support/conformance-agent.js';
import { loopingChain, makeImage, trackedImage } from './support/images.js';
import { ImageFormat } from '../../proto/gen/onestorage/agent/v1/agent.js';

const { IMAGE_FORMAT_QCOW2: QCOW2 } = ImageFormat;
/** A value this agent does not know (ts-proto's UNRECOGNIZED, -1 on the wire). */
const UNKNOWN = ImageFormat.UNRECOGNIZED;

const c = useConformanceAgent();
const { INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION } = grpc.status;

const image = (name: string): Promise<string> => trackedImage(c, name);
const loop = (vm: string): Promise<string> => loopingChain(c, vm);

describe('CloneOverlay', () => {
  it('makes disk_path an overlay on the source; a repeat finds the same layout and changes nothing', async () => {
    const source = await image('co1');
    c.tracker.track('0/78');
    const diskPath = ds('0/78/disk.0');
    const req = { source, diskPath, standalone: false, sparse: true, format: QCOW2 };
    expect(await expectSameEveryTime(() => call(c.client.cloneOverlay.bind(c.client), req))).toEqual({
      format: QCOW2,
    });
    expect(readlinkSync(c.local('0/78/disk.0'))).toBe('disk.0.snap/0');
  });

  it('a missing source is NOT_FOUND; another format INVALID_ARGUMENT; a source outside the roots PATH_OUTSIDE_ROOTS; a loop BAD_LAYOUT', async () => {
    c.tracker.track('0/79');
    const diskPath = ds('0/79/disk.0');
    const req = (source: string, format = QCOW2) => ({
      source,
      diskPath,
      standalone: false,
      sparse: true,
      format,
    });
    await expectFailure(
      call(c.client.cloneOverlay.bind(c.client), req(ds('1/missing'))),
      NOT_FOUND,
      'NOT_FOUND',
    );
    await expectFailure(
      call(c.client.cloneOverlay.bind(c.client), req(await image('co2'), UNKNOWN)),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /format/,
    );
    await expectFailure(
      call(c.client.cloneOverlay.bind(c.client), req('/etc/hostname')),
      PERMISSION_DENIED,
      'PATH_OUTSIDE_ROOTS',
    );
    await expectFailure(
      call(c.client.cloneOverlay.bind(c.client), req(await loop('79'))),
      FAILED_PRECONDITION,
      'BAD_LAYOUT',
    );
  });
});

describe('LinkImage', () => {
  it('links disk_path into the image snap dir; a repeat gives the same links', async () => {
    const source = await image('li1');
    c.tracker.track('0/80');
    const diskPath = ds('0/80/disk.0');
    const r = await expectSameEveryTime(() =>
      call(c.client.linkImage.bind(c.client), { source, diskPath, format: QCOW2 }),
    );
    expect(r).toEqual({ snapshotId: 0 });
    expect(readlinkSync(c.local('0/80/disk.0'))).toBe('../../1/li1.snap/0');
  });

  it('a missing source is NOT_FOUND; disk_path = source or another format INVALID_ARGUMENT', async () => {
    const source = await image('li2');
    const diskPath = ds(c.tracker.track('0/81'));
    await expectFailure(
      call(c.client.linkImage.bind(c.client), { source: ds('1/missing'), diskPath, format: QCOW2 }),
      NOT_FOUND,
      'NOT_FOUND',
    );
    await expectFailure(
      call(c.client.linkImage.bind(c.client), { source, diskPath: source, format: QCOW2 }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
    );
    await expectFailure(
      call(c.client.linkImage.bind(c.client), { source, diskPath, format: UNKNOWN }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /format/,
    );
  });
});

describe('CopyImageChain', () => {
  it('copies the image into disk.N.snap/0 and links the disk; a repeat rebuilds the same layout', async () => {
    const source = await image('ci1');
    c.tracker.track('0/82');
    const diskPath = ds('0/82/disk.0');
    const r = await expectSameEveryTime(() =>
      call(c.client.copyImageChain.bind(c.client), { source, diskPath, format: QCOW2 }),
    );
    expect(r).toEqual({ snapshotId: 0 });
    expect(readlinkSync(c.local('0/82/disk.0'))).toBe('disk.0.snap/0');
  });

  it('a missing source is NOT_FOUND; disk_path = source or another format INVALID_ARGUMENT', async () => {
    const source = await image('ci2');
    const diskPath = ds(c.tracker.track('0/83/disk.0'));
    c.tracker.track('0/83');
    await expectFailure(
      call(c.client.copyImageChain.bind(c.client), { source: ds('1/missing'), diskPath, format: QCOW2 }),
      NOT_FOUND,
      'NOT_FOUND',
    );
    await expectFailure(
      call(c.client.copyImageChain.bind(c.client), { source, diskPath: source, format: QCOW2 }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
    );
    await expectFailure(
      call(c.client.copyImageChain.bind(c.client), { source, diskPath, format: UNKNOWN }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /format/,
    );
  });
});

describe('SaveImageChain', () => {
  it('brings a CopyImageChain copy back to the image datastore; a repeat gives the same result', async () => {
    const source = await image('si1');
    c.tracker.track('0/84');
    const diskPath = ds('0/84/disk.0');
    await call(c.client.copyImageChain.bind(c.client), { source, diskPath, format: QCOW2 });
    const r = await expectSameEveryTime(() =>
      call(c.client.saveImageChain.bind(c.client), { source, diskPath, format: QCOW2 }),
    );
    expect(r).toEqual({ snapshotId: 0 });
    expect(readlinkSync(c.local('1/si1'))).toBe('si1.snap/0');
  });

  it('a missing disk_path is NOT_FOUND; disk_path = source INVALID_ARGUMENT', async () => {
    const source = await image('si2');
    await expectFailure(
      call(c.client.saveImageChain.bind(c.client), { source, diskPath: ds('0/85/disk.0'), format: QCOW2 }),
      NOT_FOUND,
      'NOT_FOUND',
    );
    await expectFailure(
      call(c.client.saveImageChain.bind(c.client), { source, diskPath: source, format: QCOW2 }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
    );
  });
});

describe('RelinkDisk', () => {
  it('links disk_path to disk.N.snap/<active> through the self link; a repeat changes nothing', async () => {
    c.tracker.track('0/86');
    await makeImage(c.local('0/86/disk.0.snap/0'), 'qcow2');
    const diskPath = ds('0/86/disk.0');
    await expectSameEveryTime(() =>
      call(c.client.relinkDisk.bind(c.client), { diskPath, active: '0', format: QCOW2 }),
    );
    expect(readlinkSync(c.local('0/86/disk.0'))).toBe('disk.0.snap/0');
    expect(readlinkSync(c.local('0/86/disk.0.snap/disk.0.snap'))).toBe('.');
  });

  it('an active that is not a snapshot number is INVALID_ARGUMENT; one not copied NOT_FOUND', async () => {
    c.tracker.track('0/87');
    await makeImage(c.local('0/87/disk.0.snap/0'), 'qcow2');
    const diskPath = ds('0/87/disk.0');
    await expectFailure(
      call(c.client.relinkDisk.bind(c.client), { diskPath, active: 'x', format: QCOW2 }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /active/,
    );
    await expectFailure(
      call(c.client.relinkDisk.bind(c.client), { diskPath, active: '5', format: QCOW2 }),
      NOT_FOUND,
      'NOT_FOUND',
    );
  });
});
