// Conformance of the agent's live RPC (CopyDiskLive) and the live clauses of SnapshotCreate and
// BackupPrepare, against a real agent over mutual TLS and one running TCG domain (libvirt). Starts
// a domain: run it under the live lock like the other live tests.
import { existsSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BackingStyle,
  BackupMode,
  type CopyDiskLiveRequest,
  FreezeMode,
  ImageFormat,
} from '../../proto/gen/onestorage/agent/v1/agent.js';
import { call, ds } from '../support/agent/agent-fixture.js';
import {
  LIBVIRT_URI,
  type TestDomain,
  destroyIfRunning,
  ensureLibvirt,
  startDomain,
} from '../support/libvirt.js';
import { expectFailure, expectSameEveryTime, useConformanceAgent } from './support/conformance-agent.js';
import { makeImage } from './support/images.js';

const c = useConformanceAgent({ libvirt: { uri: LIBVIRT_URI } });
const { INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS } = grpc.status;
const VM = 130;
const DOMAIN = `one-cf${VM}`;
const ABSENT = 'one-cf-absent';
let dom: TestDomain | undefined;

beforeAll(async () => {
  await ensureLibvirt();
  // QEMU runs as libvirt-qemu: it must reach the disk.
  await chmod(dirname(c.root), 0o755);
  const disk = await makeImage(c.local(`${c.tracker.keepForFile(`0/${VM}`)}/disk.0`), 'qcow2', 8);
  await destroyIfRunning(DOMAIN);
  dom = await startDomain(DOMAIN, [{ target: 'vda', path: disk, format: 'qcow2' }], dirname(c.root));
}, 60_000);

afterAll(async () => {
  await dom?.destroy();
});

const copyReq = (destination: string, over: Partial<CopyDiskLiveRequest> = {}): CopyDiskLiveRequest => ({
  diskPath: ds(`0/${VM}/disk.0`),
  destination,
  format: ImageFormat.IMAGE_FORMAT_QCOW2,
  sourceFormat: ImageFormat.IMAGE_FORMAT_QCOW2,
  live: { domain: DOMAIN, target: 'vda', freeze: FreezeMode.FREEZE_MODE_NONE },
  ...over,
});

describe('CopyDiskLive', () => {
  it('copies the running disk into place; a repeat finds the destination and changes nothing (ALREADY_EXISTS)', async () => {
    const destination = c.made(`0/${VM}/copy`);
    const r = await call(c.client.copyDiskLive.bind(c.client), copyReq(destination));
    expect(r.virtualSize).toBe(8 * 1024 * 1024);
    expect(await dom?.state()).toBe('running');
    await expectSameEveryTime(() =>
      expectFailure(
        call(c.client.copyDiskLive.bind(c.client), copyReq(destination)),
        ALREADY_EXISTS,
        'ALREADY_EXISTS',
      ),
    );
  });

  it('a domain libvirt does not have is DOMAIN_NOT_FOUND; no live part INVALID_ARGUMENT; nothing is left', async () => {
    const destination = c.made(`0/${VM}/copy2`);
    await expectFailure(
      call(
        c.client.copyDiskLive.bind(c.client),
        copyReq(destination, {
          live: { domain: ABSENT, target: 'vda', freeze: FreezeMode.FREEZE_MODE_NONE },
        }),
      ),
      NOT_FOUND,
      'DOMAIN_NOT_FOUND',
    );
    await expectFailure(
      call(c.client.copyDiskLive.bind(c.client), copyReq(destination, { live: undefined })),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /live/,
    );
    await expectFailure(
      call(c.client.copyDiskLive.bind(c.client), copyReq(destination, { format: ImageFormat.UNRECOGNIZED })),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /format/,
    );
    expect(existsSync(c.local(`0/${VM}/copy2`))).toBe(false);
  });
});

describe('SnapshotCreate live', () => {
  it('a domain libvirt does not have is DOMAIN_NOT_FOUND, and the disk is left as it was', async () => {
    await makeImage(c.local(`${c.tracker.track('0/131')}/disk.0`), 'qcow2', 8);
    await expectFailure(
      call(c.client.snapshotCreate.bind(c.client), {
        diskPath: ds('0/131/disk.0'),
        snapId: 0,
        format: ImageFormat.IMAGE_FORMAT_QCOW2,
        snapDir: '',
        backingStyle: BackingStyle.BACKING_STYLE_RELATIVE,
        live: { domain: ABSENT, target: 'vda', freeze: FreezeMode.FREEZE_MODE_NONE },
      }),
      NOT_FOUND,
      'DOMAIN_NOT_FOUND',
    );
    expect(existsSync(c.local('0/131/disk.0.snap'))).toBe(false);
  });
});

describe('BackupPrepare live', () => {
  it('a domain libvirt does not have is DOMAIN_NOT_FOUND; nothing is left', async () => {
    await makeImage(c.local(`${c.tracker.track('0/132')}/disk.0`), 'qcow2', 8);
    await expectFailure(
      call(c.client.backupPrepare.bind(c.client), {
        vmDir: ds('0/132'),
        vmId: 132,
        domain: ABSENT,
        live: true,
        disks: [{ diskId: 0, target: 'vda', format: ImageFormat.IMAGE_FORMAT_QCOW2 }],
        mode: BackupMode.BACKUP_MODE_FULL,
        backupId: 0,
        parentId: -1,
        freeze: FreezeMode.FREEZE_MODE_NONE,
        vmXml: '<VM><ID>132</ID></VM>',
      }),
      NOT_FOUND,
      'DOMAIN_NOT_FOUND',
    );
    expect(existsSync(c.local('0/132/backup'))).toBe(false);
  });
});
