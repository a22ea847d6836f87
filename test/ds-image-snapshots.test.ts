import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stack } from '../cli/src/demo/stack.js';
import { MIB } from '../common/src/units.js';
import { actionData } from './support/ds-action-data.js';
import { dsAction, expectFailure, expectSuccess } from './support/ds-image-stack.js';

// snap_delete / snap_revert / snap_flatten of a persistent image through the shims against real
// agents, on the front-end and on a bridge. The snapshots are laid out as OpenNebula's ssh TM leaves
// them: full copies in SOURCE.snap.
const FE_DS = 1;
const BRIDGED_DS = 2; // BRIDGE_LIST host01
let stack: Stack;

beforeAll(async () => {
  stack = await Stack.start({
    hosts: ['frontend', 'host01'],
  });
});

afterAll(async () => {
  await stack?.stop();
});

const hostOf = (ds: number): string => (ds === BRIDGED_DS ? 'host01' : 'frontend');
const template = (ds: number): Record<string, string> => (ds === BRIDGED_DS ? { BRIDGE_LIST: 'host01' } : {});
const byteOf = (file: string): number => readFileSync(file)[0] as number;

/** A raw persistent image holding 0xcc, with snapshots 0 (0xa0) and 1 (0xa1) as full copies. */
function persistentImage(ds: number, name: string): { source: string; local: string } {
  const source = `/var/lib/one/datastores/${ds}/${name}`;
  const local = stack.localPath(hostOf(ds), source);
  mkdirSync(`${local}.snap`, { recursive: true });
  writeFileSync(local, Buffer.alloc(MIB, 0xcc));
  writeFileSync(join(`${local}.snap`, '0'), Buffer.alloc(MIB, 0xa0));
  writeFileSync(join(`${local}.snap`, '1'), Buffer.alloc(MIB, 0xa1));
  return { source, local };
}

function snapData(id: number, ds: number, source: string, targetSnapshot: number | null): string {
  return actionData({
    image: { id, source, format: 'raw', persistent: 1, type: 2, targetSnapshot },
    datastore: { id: ds, template: template(ds) },
  });
}

describe('snapshots of a persistent image', () => {
  it.each([FE_DS, BRIDGED_DS])('in datastore %i: revert, delete, flatten', async (ds) => {
    const id = 90 + ds;
    const { source, local } = persistentImage(ds, `b000000000000000000000000000000${ds}`);
    expect(expectSuccess(await dsAction(stack, 'snap_revert', id, snapData(id, ds, source, 0)))).toBe('');
    expect(byteOf(local)).toBe(0xa0);
    expect(readdirSync(`${local}.snap`).sort()).toEqual(['0', '1']);
    expect(expectSuccess(await dsAction(stack, 'snap_delete', id, snapData(id, ds, source, 1)))).toBe('');
    expect(readdirSync(`${local}.snap`)).toEqual(['0']);
    // A repeat of the delete finds the snapshot gone and succeeds.
    expectSuccess(await dsAction(stack, 'snap_delete', id, snapData(id, ds, source, 1)));
    writeFileSync(local, Buffer.alloc(MIB, 0xdd));
    expect(expectSuccess(await dsAction(stack, 'snap_flatten', id, snapData(id, ds, source, 0)))).toBe('');
    expect(byteOf(local)).toBe(0xa0);
    expect(existsSync(`${local}.snap`)).toBe(false);
  });

  it.each([
    [
      'no TARGET_SNAPSHOT',
      null,
      /^snap_revert failed: image 95: \/DS_DRIVER_ACTION_DATA\/IMAGE\/TARGET_SNAPSHOT is missing or empty$/,
    ],
    [
      'TARGET_SNAPSHOT -1',
      -1,
      /^snap_revert failed: image 95: \/DS_DRIVER_ACTION_DATA\/IMAGE\/TARGET_SNAPSHOT is -1: no snapshot is targeted$/,
    ],
  ])('refuses %s, changing nothing', async (_what, target, message) => {
    const { source, local } = persistentImage(FE_DS, 'b0000000000000000000000000000005');
    expectFailure(await dsAction(stack, 'snap_revert', 95, snapData(95, FE_DS, source, target)), message);
    expect(byteOf(local)).toBe(0xcc);
  });

  it('fails in one line for a snapshot that does not exist', async () => {
    const { source, local } = persistentImage(FE_DS, 'b0000000000000000000000000000006');
    const r = await dsAction(stack, 'snap_revert', 96, snapData(96, FE_DS, source, 7));
    expectFailure(
      r,
      /^snap_revert failed: .*\bimage 96\b|^snap_revert failed: .*b0000000000000000000000000000006/,
    );
    expect(r.stderr).toMatch(/^ERROR: snap_revert: NOT_FOUND /m);
    expect(byteOf(local)).toBe(0xcc);
  });
});
