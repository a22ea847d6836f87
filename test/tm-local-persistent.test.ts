// A persistent qcow2 image with snapshots through two VM lives in local mode (driver `grpc`), through
// the shims with a real coordinator and agents and real qemu-img: ln, snap_create, mvds, then ln on
// another host and the next snapshot id (docs/image-datastore.md#layouts).
import { readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../cli/src/demo/demo-images.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { writeVmXml, type DiskFixture } from '../cli/src/demo/fake-oned/fixtures.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { imageInfo, layout } from './support/files.js';
import { expectOk, holdsPattern } from './support/assertions.js';

const HASH = '5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e';
const SOURCE = `${ONED_DATASTORE_LOCATION}/1/${HASH}`;
const LCM_POWEROFF_SNAPSHOT = 51; // DISK_SNAPSHOT_POWEROFF
const REPEATS = 2;

let stack: Stack;
const tm = (action: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc', action, args);
const local = (host: string, path: string): string => stack.localPath(host, path);
const diskOf = (vm: number): string => `${ONED_DATASTORE_LOCATION}/0/${vm}/disk.0`;
const disk: DiskFixture = {
  diskId: 0,
  imageId: 9,
  source: SOURCE,
  format: 'qcow2',
  tmMad: 'grpc',
  persistent: true,
  size: 16,
  originalSize: 16,
};

/** The VM as oned shows it: on `host`, with the image's snapshots copied to the disk at deploy. */
async function writeVm(vm: number, host: string, ids: number[]): Promise<void> {
  await writeVmXml(stack.fixturesDir, {
    id: vm,
    lcmState: LCM_POWEROFF_SNAPSHOT,
    disks: [disk],
    history: [{ hostname: host, dsId: 0, tmMad: 'grpc' }],
    ...(ids.length > 0 ? { snapshots: [{ diskId: 0, snapshots: ids.map((id) => ({ id })) }] } : {}),
  });
}

/** Writes `pattern` at offset 0 and at `slot` MiB (each state leaves its own mark). */
async function mark(file: string, pattern: number, slot: number): Promise<void> {
  await writePattern(file, 'qcow2', pattern, 0, MIB);
  await writePattern(file, 'qcow2', pattern, slot * MIB, MIB);
}

/** What state `pattern` (written at `slot`) reads like: its mark at 0 and at its slot. */
async function holdsState(file: string, pattern: number, slot: number): Promise<boolean> {
  return (await holdsPattern(file, pattern, 0)) && (await holdsPattern(file, pattern, slot * MIB));
}

beforeAll(async () => {
  stack = await Stack.start();
  await makeImage(local('frontend', SOURCE), 'qcow2', 16, 0x10);
});

afterAll(async () => {
  await stack?.stop();
});

describe('persistent qcow2 image with snapshots: ln, snap_create, mvds, ln on another host', () => {
  it('snapshot 2 can be taken after the round trip, and every snapshot holds what it held', async () => {
    // First life, VM 41 on host01: snapshots 0 and 1, then more writes.
    await writeVm(41, 'host01', []);
    expectOk(await tm('ln', [`frontend:${SOURCE}`, `host01:${diskOf(41)}`, '41', '1']));
    const first = local('host01', diskOf(41));
    await mark(first, 0xa0, 1);
    expectOk(await tm('snap_create', [`host01:${diskOf(41)}`, '0', '41', '1']));
    await mark(first, 0xb1, 2);
    expectOk(await tm('snap_create', [`host01:${diskOf(41)}`, '1', '41', '1']));
    await mark(first, 0xc2, 3);
    await writeVm(41, 'host01', [0, 1]);
    for (let i = 0; i < REPEATS; i++) {
      expectOk(await tm('mvds', [`host01:${diskOf(41)}`, SOURCE, '41', '1']));
    }
    expectOk(await tm('delete', [`host01:${ONED_DATASTORE_LOCATION}/0/41`, '41', '0']));

    // Second life, VM 42 on host02: the image's SNAPSHOTS keep 0 and 1, so oned's next id is 2.
    await writeVm(42, 'host02', [0, 1]);
    expectOk(await tm('ln', [`frontend:${SOURCE}`, `host02:${diskOf(42)}`, '42', '1']));
    const second = local('host02', diskOf(42));
    expect(await holdsState(second, 0xc2, 3)).toBe(true);
    expectOk(await tm('snap_create', [`host02:${diskOf(42)}`, '2', '42', '1']));
    await mark(second, 0xd3, 4);
    const snap = (id: number) => local('host02', `${diskOf(42)}.snap/${id}`);
    expect(await holdsState(snap(0), 0xa0, 1)).toBe(true);
    expect(await holdsPattern(snap(0), 0, 2 * MIB)).toBe(true);
    expect(await holdsState(snap(1), 0xb1, 2)).toBe(true);
    expect(await holdsPattern(snap(1), 0xa0, MIB)).toBe(true);
    expect(await holdsPattern(snap(1), 0, 3 * MIB)).toBe(true);
    expect(await holdsState(snap(2), 0xc2, 3)).toBe(true);
    expect(await holdsState(second, 0xd3, 4)).toBe(true);
    await runTool('qemu-img', ['check', '-q', '-f', 'qcow2', second]);

    // The image datastore after the first mvds (the second ln only read it): OpenNebula's tm/local
    // layout, SOURCE -> <hash>.snap/N, whose chain opens from SOURCE's directory.
    expect(readlinkSync(local('frontend', SOURCE))).toBe(`${HASH}.snap/2`);
    expect(layout(local('frontend', `${SOURCE}.snap`))).toEqual(['0', '1', '2', `${HASH}.snap -> .`]);
    expect((await imageInfo(local('frontend', `${SOURCE}.snap/2`), 'qcow2'))['backing-filename']).toBe(
      `${HASH}.snap/1`,
    );
    expect(await holdsState(local('frontend', SOURCE), 0xc2, 3)).toBe(true);

    // Back to the image datastore: snapshot 2 and the new current state are kept there too.
    await writeVm(42, 'host02', [0, 1, 2]);
    expectOk(await tm('mvds', [`host02:${diskOf(42)}`, SOURCE, '42', '1']));
    expect(readlinkSync(local('frontend', SOURCE))).toBe(`${HASH}.snap/3`);
    expect(await holdsState(local('frontend', SOURCE), 0xd3, 4)).toBe(true);
    expect(await holdsState(local('frontend', `${SOURCE}.snap/2`), 0xc2, 3)).toBe(true);
    expect(await holdsState(local('frontend', `${SOURCE}.snap/0`), 0xa0, 1)).toBe(true);
  });
});
