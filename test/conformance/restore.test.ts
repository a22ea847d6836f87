// Conformance of TM restore's agent RPCs (RestoreDisk, RestoreTpm) against a real agent over mutual
// TLS: the layouts on the wire, the staging file used up (so a repeat is NOT_FOUND), and the
// documented errors with the old data left in place.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  RestoreLayout,
  type RestoreDiskRequest,
  type RestoreTpmRequest,
} from '../../proto/gen/onestorage/agent/v1/agent.js';
import { runTool } from '../../common/src/tools/run-tool.js';
import { call, ds } from '../support/agent/agent-fixture.js';
import { wireFormat } from '../support/wire-enums.js';
import { expectFailure, useConformanceAgent } from './support/conformance-agent.js';
import { makeImage } from './support/images.js';

const c = useConformanceAgent();
const { INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, DATA_LOSS } = grpc.status;

const restoreDisk = (r: RestoreDiskRequest) => call(c.client.restoreDisk.bind(c.client), r);
const restoreTpm = (r: RestoreTpmRequest) => call(c.client.restoreTpm.bind(c.client), r);

/** A VM directory 0/<vm> holding disk.0 and a received restore point with one bitmap. */
async function received(vm: number): Promise<RestoreDiskRequest> {
  c.tracker.track(`0/${vm}`);
  await makeImage(c.local(`0/${vm}/disk.0`), 'qcow2', 8);
  const staging = await makeImage(c.local(`0/${vm}/disk.0.backup`), 'qcow2', 8);
  await runTool('qemu-img', ['bitmap', '--add', '-f', 'qcow2', staging, `one-${vm}-0`]);
  return {
    staging: ds(`0/${vm}/disk.0.backup`),
    diskPath: ds(`0/${vm}/disk.0`),
    layout: RestoreLayout.RESTORE_LAYOUT_SNAP_DIR,
    format: wireFormat('qcow2'),
    source: '',
  };
}

describe('RestoreDisk', () => {
  it('SNAP_DIR: disk.0 -> disk.0.snap/0, bitmaps named in the answer; the staging file is used up (a repeat is NOT_FOUND)', async () => {
    const req = await received(140);
    const r = await restoreDisk(req);
    expect(r.bitmapsRemoved).toEqual(['one-140-0']);
    expect(r.virtualSize).toBe(8 * 1024 * 1024);
    expect(readlinkSync(c.local('0/140/disk.0'))).toBe('disk.0.snap/0');
    expect(lstatSync(c.local('0/140/disk.0.snap/0')).isFile()).toBe(true);
    await expectFailure(restoreDisk(req), NOT_FOUND, 'NOT_FOUND', /disk\.0\.backup does not exist/);
  });

  it('UNSPECIFIED layout or format, IMAGE without source, a staging path the restore replaces: INVALID_ARGUMENT; outside the roots refused; the disk left', async () => {
    const req = await received(141);
    const before = readFileSync(c.local('0/141/disk.0'));
    await expectFailure(
      restoreDisk({ ...req, layout: RestoreLayout.RESTORE_LAYOUT_UNSPECIFIED }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /layout/,
    );
    await expectFailure(restoreDisk({ ...req, format: 0 }), INVALID_ARGUMENT, 'INVALID_ARGUMENT', /format/);
    await expectFailure(
      restoreDisk({ ...req, layout: RestoreLayout.RESTORE_LAYOUT_IMAGE }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /source/,
    );
    await expectFailure(
      restoreDisk({ ...req, staging: req.diskPath }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /staging/,
    );
    await expectFailure(
      restoreDisk({ ...req, staging: '/etc/passwd' }),
      PERMISSION_DENIED,
      'PATH_OUTSIDE_ROOTS',
    );
    expect(readFileSync(c.local('0/141/disk.0')).equals(before)).toBe(true);
  });

  it('a received file that is not a standalone qcow2 is BAD_IMAGE; it is removed, the disk left', async () => {
    const req = await received(142);
    writeFileSync(c.local('0/142/disk.0.backup'), Buffer.alloc(4096, 0x41));
    await expectFailure(restoreDisk(req), INVALID_ARGUMENT, 'BAD_IMAGE', /not a qcow2 image/);
    expect(existsSync(c.local('0/142/disk.0.backup'))).toBe(false);
    expect(lstatSync(c.local('0/142/disk.0')).isFile()).toBe(true);
  });
});

describe('RestoreTpm', () => {
  it('replaces <vm_dir>/tpm once the archive matches SHA256SUMS; a mismatch is CHECKSUM_MISMATCH; both files always go', async () => {
    c.tracker.track('0/143');
    const dir = c.local('0/143');
    await mkdir(`${dir}/src/tpm`, { recursive: true });
    writeFileSync(`${dir}/src/tpm/state`, 'saved');
    await mkdir(`${dir}/tpm`, { recursive: true });
    writeFileSync(`${dir}/tpm/state`, 'current');
    const archive = `${dir}/disk.tpm.backup`;
    const req: RestoreTpmRequest = {
      archive: ds('0/143/disk.tpm.backup'),
      sums: ds('0/143/SHA256SUMS.backup'),
      vmDir: ds('0/143'),
    };
    const prepare = async (listed: string): Promise<void> => {
      await runTool('tar', ['-c', '-z', '-f', archive, '-C', `${dir}/src`, 'tpm']);
      writeFileSync(`${dir}/SHA256SUMS.backup`, `${listed}  disk.tpm.0\n`);
    };
    await prepare('0'.repeat(64));
    await expectFailure(restoreTpm(req), DATA_LOSS, 'CHECKSUM_MISMATCH', /disk\.tpm\.0/);
    expect(readFileSync(`${dir}/tpm/state`, 'utf8')).toBe('current');
    expect(existsSync(archive) || existsSync(`${dir}/SHA256SUMS.backup`)).toBe(false);
    await prepare('');
    writeFileSync(
      `${dir}/SHA256SUMS.backup`,
      `${createHash('sha256').update(readFileSync(archive)).digest('hex')}  disk.tpm.0\n`,
    );
    expect(await restoreTpm(req)).toEqual({ files: 1 });
    expect(readFileSync(`${dir}/tpm/state`, 'utf8')).toBe('saved');
    expect(existsSync(archive) || existsSync(`${dir}/SHA256SUMS.backup`)).toBe(false);
    await expectFailure(restoreTpm(req), NOT_FOUND, 'NOT_FOUND');
  });
});
