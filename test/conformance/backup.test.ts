// Conformance of the agent's backup RPCs (BackupPrepare, BackupFinish, BackupCancel) against a real
// agent over mutual TLS, for a powered-off VM (live=false); the live variants are in live.test.ts.
import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  BackupMode,
  type BackupPrepareRequest,
  FreezeMode,
  ImageFormat,
} from '../../proto/gen/onestorage/agent/v1/agent.js';
import { call, ds } from '../support/agent/agent-fixture.js';
import { expectFailure, expectSameEveryTime, useConformanceAgent } from './support/conformance-agent.js';
import { makeImage } from './support/images.js';
import { wireFormat } from '../support/wire-enums.js';

const c = useConformanceAgent();
const { INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED } = grpc.status;

async function vm(
  id: number,
  format: 'raw' | 'qcow2' = 'qcow2',
): Promise<(over?: Partial<BackupPrepareRequest>) => BackupPrepareRequest> {
  await makeImage(c.local(`${c.tracker.track(`0/${id}`)}/disk.0`), format, 8);
  return (over = {}) => ({
    vmDir: ds(`0/${id}`),
    vmId: id,
    domain: `one-${id}`,
    live: false,
    disks: [{ diskId: 0, target: 'vda', format: wireFormat(format) }],
    mode: BackupMode.BACKUP_MODE_FULL,
    backupId: 0,
    parentId: -1,
    freeze: FreezeMode.FREEZE_MODE_NONE,
    vmXml: `<VM><ID>${id}</ID></VM>`,
    ...over,
  });
}

const prepare = (r: BackupPrepareRequest) => call(c.client.backupPrepare.bind(c.client), r);

describe('BackupPrepare', () => {
  it('writes backup/vm.xml and backup/disk.0.0; a repeat starts over and gives the same', async () => {
    const req = await vm(120);
    const r = await expectSameEveryTime(
      () => prepare(req()),
      (p) => ({ method: p.method, disks: p.disks.map((d) => [d.diskId, d.path, d.type]) }),
    );
    expect(r.disks).toEqual([[0, ds('0/120/backup/disk.0.0'), BackupMode.BACKUP_MODE_FULL]]);
    expect(existsSync(c.local('0/120/backup/vm.xml'))).toBe(true);
  });

  it('a raw disk in INCREMENT mode is INVALID_ARGUMENT; a missing disk NOT_FOUND; a bad vm_dir refused; nothing is left', async () => {
    const raw = await vm(121, 'raw');
    await expectFailure(
      prepare(raw({ mode: BackupMode.BACKUP_MODE_INCREMENT })),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /raw/,
    );
    const req = await vm(122);
    await expectFailure(
      prepare(req({ disks: [{ diskId: 5, target: 'vda', format: ImageFormat.IMAGE_FORMAT_QCOW2 }] })),
      NOT_FOUND,
      'NOT_FOUND',
    );
    await expectFailure(prepare(req({ vmDir: '/etc' })), PERMISSION_DENIED, 'PATH_OUTSIDE_ROOTS');
    for (const id of [121, 122]) expect(existsSync(c.local(`0/${id}/backup`))).toBe(false);
  });
});

describe('BackupFinish', () => {
  it('removes backup/ and tmp/; a repeat (nothing to do) succeeds the same way', async () => {
    const req = await vm(123);
    await prepare(req());
    const finish = () =>
      call(c.client.backupFinish.bind(c.client), {
        vmDir: ds('0/123'),
        domain: 'one-123',
        live: false,
        failed: false,
      });
    expect(await expectSameEveryTime(finish)).toEqual({ overlaysCommitted: 0 });
    expect(existsSync(c.local('0/123/backup'))).toBe(false);
  });

  it('refuses a bad vm_dir', async () => {
    await expectFailure(
      call(c.client.backupFinish.bind(c.client), {
        vmDir: '/etc',
        domain: 'one-1',
        live: false,
        failed: false,
      }),
      PERMISSION_DENIED,
      'PATH_OUTSIDE_ROOTS',
    );
  });
});

describe('BackupCancel', () => {
  it('with nothing running answers running=false, every time', async () => {
    const vmDir = c.made('0/124');
    expect(
      await expectSameEveryTime(() =>
        call(c.client.backupCancel.bind(c.client), { vmDir, domain: 'one-124' }),
      ),
    ).toEqual({ running: false, overlaysCommitted: 0 });
  });

  it('refuses a bad vm_dir', async () => {
    await expectFailure(
      call(c.client.backupCancel.bind(c.client), { vmDir: 'relative', domain: 'one-1' }),
      INVALID_ARGUMENT,
      'UNSAFE_PATH',
    );
  });
});
