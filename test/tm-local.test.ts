// Local-mode TM actions (driver `grpc`, replacing OpenNebula's ssh TM, docs/opennebula/tm-actions.md#ssh) driven through
// the real installed shims, a real coordinator and real agents on loopback, with real qemu-img images.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, writePattern, MIB } from '../cli/src/demo/demo-images.js';
import { distEntry } from '../cli/src/demo/processes.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { Journal } from '../coordinator/src/journal/journal.js';
import { writeVmXml, type DiskFixture } from '../cli/src/demo/fake-oned/fixtures.js';
import { allocatedBytes, imageInfo, imagesIdentical, layout, sha256File } from './support/files.js';
import { expectOk } from './support/assertions.js';

const VM = 7;
const SYS = `${ONED_DATASTORE_LOCATION}/0`;
const IMG = `${ONED_DATASTORE_LOCATION}/1`;
const QCOW2_SOURCE = `${IMG}/0a1b2c3d4e5f60718293a4b5c6d7e8f9`;
const RAW_SOURCE = `${IMG}/ffeeddccbbaa99887766554433221100`;
const RAW_SIZE_MB = 256;
/** "Within a few MiB": metadata and filesystem rounding, never a filled hole. */
const SPARSE_SLACK = 4 * MIB;
const REPEATS = 3;

let stack: Stack;
const tm = (action: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc', action, args);
const local = (host: string, path: string): string => stack.localPath(host, path);

async function writeVm(disks: DiskFixture[], hosts: string[] = ['host01'], lcmState = 3): Promise<void> {
  await writeVmXml(stack.fixturesDir, {
    id: VM,
    lcmState,
    disks,
    history: hosts.map((hostname) => ({ hostname, dsId: 0, tmMad: 'grpc' })),
  });
}

const qcowDisk = (extra: Partial<DiskFixture> = {}): DiskFixture => ({
  diskId: 0,
  imageId: 0,
  source: QCOW2_SOURCE,
  format: 'qcow2',
  tmMad: 'grpc',
  size: 64,
  originalSize: 64,
  ...extra,
});
const rawDisk = (extra: Partial<DiskFixture> = {}): DiskFixture => ({
  diskId: 1,
  imageId: 1,
  source: RAW_SOURCE,
  format: 'raw',
  tmMad: 'grpc',
  persistent: true,
  size: RAW_SIZE_MB,
  originalSize: RAW_SIZE_MB,
  ...extra,
});

beforeAll(async () => {
  stack = await Stack.start();
  await makeImage(local('frontend', QCOW2_SOURCE), 'qcow2', 64, 0x11);
  // A raw image with data at the start, the middle and the end, and holes between.
  await makeImage(local('frontend', RAW_SOURCE), 'raw', RAW_SIZE_MB, 0x22);
  await writePattern(local('frontend', RAW_SOURCE), 'raw', 0x23, 100 * MIB, 8 * MIB);
  await writePattern(local('frontend', RAW_SOURCE), 'raw', 0x24, (RAW_SIZE_MB - 1) * MIB, MIB);
});

afterAll(async () => {
  await stack?.stop();
});

describe('clone (non-persistent image to a host)', () => {
  it('copies the image, keeps holes, marks the datastore, and a repeat gives the same result', async () => {
    await writeVm([qcowDisk()]);
    const layouts: string[][] = [];
    for (let i = 0; i < REPEATS; i++) {
      expectOk(await tm('clone', [`frontend:${QCOW2_SOURCE}`, `host01:${SYS}/${VM}/disk.0`, `${VM}`, '1']));
      const copy = local('host01', `${SYS}/${VM}/disk.0`);
      expect(await imagesIdentical(local('frontend', QCOW2_SOURCE), 'qcow2', copy, 'qcow2')).toBe(true);
      // Opened as qcow2 (-f pinned): qemu-img refuses a copy that is not one.
      expect((await imageInfo(copy, 'qcow2')).format).toBe('qcow2');
      expect(Math.abs(allocatedBytes(copy) - allocatedBytes(local('frontend', QCOW2_SOURCE)))).toBeLessThan(
        SPARSE_SLACK,
      );
      layouts.push(layout(local('host01', SYS)));
    }
    expect(layouts[0]).toEqual(['.monitor', `${VM}/`, `${VM}/disk.0`]);
    expect(new Set(layouts.map((l) => l.join('|'))).size).toBe(1);
    expect(readFileSync(local('host01', `${SYS}/.monitor`), 'utf8').trim()).toBe('grpc');
  });

  it('grows the copy when DISK SIZE exceeds ORIGINAL_SIZE', async () => {
    await writeVm([qcowDisk({ size: 96 })]);
    expectOk(await tm('clone', [`frontend:${QCOW2_SOURCE}`, `host01:${SYS}/${VM}/disk.0`, `${VM}`, '1']));
    const copy = local('host01', `${SYS}/${VM}/disk.0`);
    expect((await imageInfo(copy, 'qcow2'))['virtual-size']).toBe(96 * MIB);
    expect((await imageInfo(local('frontend', QCOW2_SOURCE), 'qcow2'))['virtual-size']).toBe(64 * MIB);
  });

  it('keeps a raw image sparse: allocated size of the copy within a few MiB of the source', async () => {
    await writeVm([qcowDisk(), rawDisk()]);
    expectOk(await tm('clone', [`frontend:${RAW_SOURCE}`, `host01:${SYS}/${VM}/disk.1`, `${VM}`, '1']));
    const src = local('frontend', RAW_SOURCE);
    const copy = local('host01', `${SYS}/${VM}/disk.1`);
    expect(await sha256File(copy)).toBe(await sha256File(src));
    expect(allocatedBytes(copy)).toBeLessThan(allocatedBytes(src) + SPARSE_SLACK);
    expect(allocatedBytes(copy)).toBeLessThan((RAW_SIZE_MB * MIB) / 4);
  });

  it('SPARSE=no gives a fully allocated copy', async () => {
    await writeVm([qcowDisk(), rawDisk({ attrs: { SPARSE: 'NO' } })]);
    expectOk(await tm('clone', [`frontend:${RAW_SOURCE}`, `host02:${SYS}/${VM}/disk.1`, `${VM}`, '1']));
    const copy = local('host02', `${SYS}/${VM}/disk.1`);
    expect(await sha256File(copy)).toBe(await sha256File(local('frontend', RAW_SOURCE)));
    expect(allocatedBytes(copy)).toBeGreaterThanOrEqual(RAW_SIZE_MB * MIB);
    expectOk(await tm('delete', [`host02:${SYS}/${VM}`, `${VM}`, '0']));
  });

  it('records the call and each agent RPC in the journal', async () => {
    const journal = new Journal(stack.journalPath);
    try {
      const calls = journal.recentCalls(50).filter((c) => c.action === 'clone' && c.outcome === 'success');
      expect(calls.length).toBeGreaterThanOrEqual(REPEATS);
      const last = calls.find((c) => (c.args as string[])[1]?.startsWith('host01:'));
      expect(last?.vmId).toBe(VM);
      expect(last?.hosts).toEqual(expect.arrayContaining(['frontend', 'host01']));
      const steps = journal.steps(last?.requestId ?? '');
      expect(steps.map((s) => s.rpc)).toEqual(
        expect.arrayContaining(['makeDir', 'setMonitorMarker', 'openSend', 'receive']),
      );
      expect(steps.every((s) => s.outcome === 'success' && s.endedAt !== undefined)).toBe(true);
      expect(steps.find((s) => s.rpc === 'receive')?.bytes).toBeGreaterThan(0);
    } finally {
      journal.close();
    }
  });
});

describe('one-storage journal (the operator view of the same rows)', () => {
  it('lists recent calls and one call with its agent RPCs', () => {
    const cli = (args: string[]): string =>
      execFileSync(
        process.execPath,
        [distEntry('cli/src/main.js'), 'journal', '--db', stack.journalPath, ...args],
        {
          encoding: 'utf8',
        },
      );
    const recent = cli(['--limit', '3']).trim().split('\n');
    expect(recent).toHaveLength(3);
    const clone = recent.find((l) => l.includes(' tm/grpc/clone '));
    expect(clone).toMatch(/tm\/grpc\/clone frontend:.* → success \(\d+ ms/);
    const requestId = clone?.split(' ')[1] ?? '';
    const detail = cli(['--request', requestId]);
    expect(detail).toMatch(/^ {4}host0\d receive → success \(\d+ ms [\d.]+ MiB\)$/m);
    expect(detail).toMatch(/^ {4}frontend openSend → success/m);
  });
});

describe('ln (persistent image to a host)', () => {
  it('copies the image and its .snap directory (renamed disk.i.snap); a repeat gives the same layout', async () => {
    await writeVm([qcowDisk(), rawDisk()]);
    const snapSrc = local('frontend', `${RAW_SOURCE}.snap`);
    await mkdir(snapSrc, { recursive: true });
    await makeImage(`${snapSrc}/0`, 'raw', 8, 0x31);
    const layouts: string[][] = [];
    for (let i = 0; i < REPEATS; i++) {
      expectOk(await tm('ln', [`frontend:${RAW_SOURCE}`, `host01:${SYS}/${VM}/disk.1`, `${VM}`, '1']));
      layouts.push(layout(local('host01', `${SYS}/${VM}`)).filter((l) => l.startsWith('disk.1')));
    }
    expect(layouts[0]).toEqual(['disk.1', 'disk.1.snap/', 'disk.1.snap/0']);
    expect(new Set(layouts.map((l) => l.join('|'))).size).toBe(1);
    expect(await sha256File(local('host01', `${SYS}/${VM}/disk.1.snap/0`))).toBe(
      await sha256File(`${snapSrc}/0`),
    );
  });
});

describe('mv (STOP, RESUME, MIGRATE)', () => {
  it('a disk-level mv does nothing; the directory-level mv moves everything, and a repeat succeeds', async () => {
    await writeVm([qcowDisk(), rawDisk()], ['host01', 'host02']);
    const before = layout(local('host01', `${SYS}/${VM}`));
    const sums = await sha256File(local('host01', `${SYS}/${VM}/disk.1`));
    expectOk(await tm('mv', [`host01:${SYS}/${VM}/disk.0`, `host02:${SYS}/${VM}/disk.0`, `${VM}`, '1']));
    expect(layout(local('host01', `${SYS}/${VM}`))).toEqual(before);
    expect(existsSync(local('host02', `${SYS}/${VM}`))).toBe(false);
    for (let i = 0; i < REPEATS; i++) {
      expectOk(await tm('mv', [`host01:${SYS}/${VM}`, `host02:${SYS}/${VM}`, `${VM}`, '0']));
      expect(existsSync(local('host01', `${SYS}/${VM}`))).toBe(false);
      expect(layout(local('host02', `${SYS}/${VM}`))).toEqual(before);
    }
    expect(await sha256File(local('host02', `${SYS}/${VM}/disk.1`))).toBe(sums);
    expect(readFileSync(local('host02', `${SYS}/.monitor`), 'utf8').trim()).toBe('grpc');
  });

  it('STOP to the front-end and RESUME back keep every file', async () => {
    const before = layout(local('host02', `${SYS}/${VM}`));
    expectOk(await tm('mv', [`host02:${SYS}/${VM}`, `frontend:${SYS}/${VM}`, `${VM}`, '0']));
    expect(layout(local('frontend', `${SYS}/${VM}`))).toEqual(before);
    expect(existsSync(local('host02', `${SYS}/${VM}`))).toBe(false);
    expectOk(await tm('mv', [`frontend:${SYS}/${VM}`, `host01:${SYS}/${VM}`, `${VM}`, '0']));
    expect(layout(local('host01', `${SYS}/${VM}`))).toEqual(before);
    expect(existsSync(local('frontend', `${SYS}/${VM}`))).toBe(false);
  });

  it('does nothing when source and destination are the same storage', async () => {
    const before = layout(local('host01', `${SYS}/${VM}`));
    expectOk(await tm('mv', [`host01:${SYS}/${VM}`, `host01:${SYS}/${VM}`, `${VM}`, '0']));
    expect(layout(local('host01', `${SYS}/${VM}`))).toEqual(before);
  });

  it('fails with one line when neither end has the directory', async () => {
    const r = await tm('mv', [`host02:${SYS}/999`, `host01:${SYS}/999`, `${VM}`, '0']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/mv failed: neither host02:\/var\/lib\/one\/datastores\/0\/999 nor host01:/);
  });
});

describe('mvds (persistent disk back to its image)', () => {
  it('copies the disk written on the host back to SOURCE, drops SOURCE.md5sum, and a repeat succeeds', async () => {
    const disk = local('host01', `${SYS}/${VM}/disk.1`);
    await writePattern(disk, 'raw', 0x5a, 4 * MIB, MIB);
    await writeFile(local('frontend', `${RAW_SOURCE}.md5sum`), 'stale\n');
    for (let i = 0; i < REPEATS; i++) {
      expectOk(await tm('mvds', [`host01:${SYS}/${VM}/disk.1`, RAW_SOURCE, `${VM}`, '1']));
      expect(await sha256File(local('frontend', RAW_SOURCE))).toBe(await sha256File(disk));
      expect(existsSync(local('frontend', `${RAW_SOURCE}.md5sum`))).toBe(false);
    }
    expect(allocatedBytes(local('frontend', RAW_SOURCE))).toBeLessThan((RAW_SIZE_MB * MIB) / 4);
  });
});

describe('delete', () => {
  it('removes a disk, then the VM directory; repeats and absent paths succeed', async () => {
    for (let i = 0; i < REPEATS; i++) {
      expectOk(await tm('delete', [`host01:${SYS}/${VM}/disk.0`, `${VM}`, '1']));
      expect(existsSync(local('host01', `${SYS}/${VM}/disk.0`))).toBe(false);
      expect(existsSync(local('host01', `${SYS}/${VM}/disk.1`))).toBe(true);
    }
    for (let i = 0; i < REPEATS; i++) {
      expectOk(await tm('delete', [`host01:${SYS}/${VM}`, `${VM}`, '0']));
      expect(layout(local('host01', SYS))).toEqual(['.monitor']);
    }
  });
});
