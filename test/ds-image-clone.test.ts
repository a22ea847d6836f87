import { mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stack } from '../cli/src/demo/stack.js';
import { create } from '../agent/src/qemu/qemu-img.js';
import { MIB, makeImage, writePattern } from '../cli/src/demo/demo-images.js';
import { holdsPattern } from './support/assertions.js';
import { actionData, type ActionDataOptions } from './support/ds-action-data.js';
import {
  dsAction,
  expectFailure,
  expectSourceName,
  expectSuccess,
  storedFormat,
} from './support/ds-image-stack.js';
import { imageInfo, imagesIdentical, layout } from './support/files.js';

// clone of the image datastore driver: a standalone copy of another image's SOURCE (IMAGE/PATH) in
// the target datastore, on one agent (convert) or across two (convert, then the data path).
const FE_DS = 1; // on the front-end
const BRIDGED_DS = 3; // BRIDGE_LIST host01
const SIZE_MB = 4;
let stack: Stack;

beforeAll(async () => {
  stack = await Stack.start({ hosts: ['frontend', 'host01'] });
});

afterAll(async () => {
  await stack?.stop();
});

const base = (ds: number): string => `/var/lib/one/datastores/${ds}`;
const bridges = (ds: number): Record<string, string> => (ds === BRIDGED_DS ? { BRIDGE_LIST: 'host01' } : {});

/** An image `<ds>/<name>` on `host`, raw or qcow2, 0x11 in its first MiB. */
async function makeSourceImage(
  host: string,
  ds: number,
  name: string,
  format: 'raw' | 'qcow2',
): Promise<string> {
  const source = `${base(ds)}/${name}`;
  await makeImage(stack.localPath(host, source), format, SIZE_MB, 0x11);
  return source;
}

function cloneData(
  id: number,
  path: string,
  format: string,
  ds: number,
  more: ActionDataOptions = {},
): string {
  return actionData({
    image: { id, path, format, size: 4 },
    datastore: { id: ds, template: { ...bridges(ds), ...more.datastore?.template } },
    ...(more.sourceBridgeList === undefined ? {} : { sourceBridgeList: more.sourceBridgeList }),
  });
}

async function clone(id: number, stdin: string, ds: number): Promise<{ source: string; format: string }> {
  const before = Date.now();
  const out = expectSuccess(await dsAction(stack, 'clone', id, stdin));
  const m = /^(\S+) (raw|qcow2)\n$/.exec(out);
  expect(m, out).not.toBeNull();
  const source = m?.[1] as string;
  expectSourceName(source, base(ds), id, before, Date.now());
  return { source, format: m?.[2] as string };
}

/** No temporary left in a datastore directory. */
function temporaries(host: string, ds: number): string[] {
  return readdirSync(stack.localPath(host, base(ds))).filter((n) => n.startsWith('.'));
}

describe('clone', () => {
  it('on one host: a copy in the source format when DRIVER is unset', async () => {
    const from = await makeSourceImage('frontend', FE_DS, 'a0000000000000000000000000000001', 'qcow2');
    const r = await clone(50, cloneData(50, from, 'qcow2', FE_DS), FE_DS);
    expect(r.format).toBe('qcow2');
    const copy = stack.localPath('frontend', r.source);
    expect(storedFormat(copy)).toBe('qcow2');
    expect(await imagesIdentical(stack.localPath('frontend', from), 'qcow2', copy, 'qcow2')).toBe(true);
  });

  it("in DRIVER's format when DRIVER is raw or qcow2", async () => {
    const from = await makeSourceImage('frontend', FE_DS, 'a0000000000000000000000000000002', 'raw');
    const stdin = cloneData(51, from, 'raw', FE_DS, { datastore: { template: { DRIVER: 'qcow2' } } });
    const r = await clone(51, stdin, FE_DS);
    expect(r.format).toBe('qcow2');
    expect(storedFormat(stack.localPath('frontend', r.source))).toBe('qcow2');
    expect(await holdsPattern(stack.localPath('frontend', r.source), 0x11, 0, 'qcow2')).toBe(true);
  });

  it('of a chained image (SOURCE linked into its .snap): the copy is standalone', async () => {
    const name = 'a0000000000000000000000000000003';
    const source = `${base(FE_DS)}/${name}`;
    const snap = stack.localPath('frontend', `${source}.snap`);
    mkdirSync(snap, { recursive: true });
    symlinkSync('.', join(snap, `${name}.snap`));
    await makeImage(join(snap, '0'), 'qcow2', SIZE_MB, 0x11);
    const top = join(snap, '1');
    await create(top, { format: 'qcow2', backing: { name: `${name}.snap/0`, format: 'qcow2' } });
    await writePattern(top, 'qcow2', 0x22, MIB, MIB);
    symlinkSync(`${name}.snap/1`, stack.localPath('frontend', source));
    const r = await clone(52, cloneData(52, source, 'qcow2', FE_DS), FE_DS);
    const copy = stack.localPath('frontend', r.source);
    expect(storedFormat(copy)).toBe('qcow2');
    const info = await imageInfo(copy, 'qcow2');
    expect(info['backing-filename']).toBeUndefined();
    expect(await holdsPattern(copy, 0x11, 0, 'qcow2')).toBe(true);
    expect(await holdsPattern(copy, 0x22, MIB, 'qcow2')).toBe(true);
  });

  it('from a bridge to the front-end: converted on the bridge, pulled, the temporary gone', async () => {
    const from = await makeSourceImage('host01', BRIDGED_DS, 'a0000000000000000000000000000004', 'raw');
    const before = layout(stack.localPath('host01', base(BRIDGED_DS)));
    const stdin = cloneData(53, from, 'raw', FE_DS, { sourceBridgeList: 'host01' });
    const r = await clone(53, stdin, FE_DS);
    expect(r.format).toBe('raw');
    expect(
      await imagesIdentical(
        stack.localPath('host01', from),
        'raw',
        stack.localPath('frontend', r.source),
        'raw',
      ),
    ).toBe(true);
    expect(layout(stack.localPath('host01', base(BRIDGED_DS)))).toEqual(before);
  });

  it('from the front-end to a bridged datastore, and within the bridged datastore', async () => {
    const from = await makeSourceImage('frontend', FE_DS, 'a0000000000000000000000000000005', 'qcow2');
    const r = await clone(54, cloneData(54, from, 'qcow2', BRIDGED_DS), BRIDGED_DS);
    expect(
      await imagesIdentical(
        stack.localPath('frontend', from),
        'qcow2',
        stack.localPath('host01', r.source),
        'qcow2',
      ),
    ).toBe(true);
    expect(temporaries('frontend', FE_DS)).toEqual([]);
    const again = await clone(55, cloneData(55, r.source, 'qcow2', BRIDGED_DS), BRIDGED_DS);
    expect(
      await imagesIdentical(
        stack.localPath('host01', r.source),
        'qcow2',
        stack.localPath('host01', again.source),
        'qcow2',
      ),
    ).toBe(true);
  });

  it('fails in one line for a missing source, leaving nothing on either side', async () => {
    const missing = `${base(BRIDGED_DS)}/a00000000000000000000000000000ff`;
    const feBefore = layout(stack.localPath('frontend', base(FE_DS)));
    const bridgeBefore = layout(stack.localPath('host01', base(BRIDGED_DS)));
    const r = await dsAction(
      stack,
      'clone',
      56,
      cloneData(56, missing, 'raw', FE_DS, { sourceBridgeList: 'host01' }),
    );
    expectFailure(
      r,
      /^clone failed: image 56: .*a00000000000000000000000000000ff.*(does not exist|no such file)/i,
    );
    expect(r.stderr).toMatch(/^ERROR: clone: NOT_FOUND /m);
    expect(layout(stack.localPath('frontend', base(FE_DS)))).toEqual(feBefore);
    expect(layout(stack.localPath('host01', base(BRIDGED_DS)))).toEqual(bridgeBefore);
  });

  it.each([
    [
      'a source FORMAT it cannot pin',
      { path: '/var/lib/one/datastores/1/x', format: 'vmdk' },
      /IMAGE\/FORMAT "vmdk" is not a format the grpc datastore keeps \(raw, qcow2\)$/,
    ],
    [
      'no PATH',
      { path: '', format: 'raw' },
      /^clone failed: image 57: \/DS_DRIVER_ACTION_DATA\/IMAGE\/PATH is missing or empty$/,
    ],
    [
      'a relative PATH',
      { path: 'datastores/1/x', format: 'raw' },
      /IMAGE\/PATH "datastores\/1\/x" is not an absolute path/,
    ],
  ])('refuses %s', async (_what, image, message) => {
    const r = await dsAction(stack, 'clone', 57, actionData({ image: { id: 57, ...image } }));
    expectFailure(r, message);
  });
});
