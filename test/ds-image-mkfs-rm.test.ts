import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stack } from '../cli/src/demo/stack.js';
import { runAction } from '../cli/src/demo/run-action.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { actionData, type ImageXmlOptions } from './support/ds-action-data.js';
import {
  DS_DRIVER,
  dsAction,
  expectFailure,
  expectSourceName,
  expectSuccess,
  infoLines,
  storedFormat,
} from './support/ds-image-stack.js';
import { imageInfo, layout } from './support/files.js';

// mkfs and rm of the image datastore driver through the installed shims, as one_datastore.rb runs
// them (image id as the argument, base64 DS_DRIVER_ACTION_DATA on stdin), against real agents.
const BASE = '/var/lib/one/datastores/1';
let stack: Stack;

beforeAll(async () => {
  stack = await Stack.start({ hosts: ['frontend', 'host01'] });
});

afterAll(async () => {
  await stack?.stop();
});

const local = (path: string): string => stack.localPath('frontend', path);

async function mkfs(id: number, image: ImageXmlOptions): Promise<string> {
  const before = Date.now();
  const r = await dsAction(stack, 'mkfs', id, actionData({ image: { id, ...image } }));
  const out = expectSuccess(r);
  expect(out).toMatch(/^\S+\n$/);
  const source = out.trimEnd();
  expectSourceName(source, BASE, id, before, Date.now());
  return source;
}

async function blkid(file: string, tag: string): Promise<string> {
  return (await runTool('blkid', ['-o', 'value', '-s', tag, file])).stdout.trim();
}

describe('mkfs', () => {
  it('makes an empty raw image of SIZE MiB and prints SOURCE', async () => {
    const source = await mkfs(20, { format: 'raw', size: 16 });
    expect(storedFormat(local(source))).toBe('raw');
    expect((await imageInfo(local(source), 'raw'))['virtual-size']).toBe(16 * 1024 * 1024);
  });

  it('makes a qcow2 image', async () => {
    const source = await mkfs(21, { format: 'qcow2', size: 32 });
    expect(storedFormat(local(source))).toBe('qcow2');
    expect((await imageInfo(local(source), 'qcow2'))['virtual-size']).toBe(32 * 1024 * 1024);
  });

  it('formats it with IMAGE/FS (ext4), raw and qcow2', async () => {
    const raw = await mkfs(22, { format: 'raw', size: 16, fs: 'ext4' });
    expect(await blkid(local(raw), 'TYPE')).toBe('ext4');
    const qcow2 = await mkfs(23, { format: 'qcow2', size: 16, fs: 'ext4' });
    expect(storedFormat(local(qcow2))).toBe('qcow2');
    const flat = join(stack.baseDir, 'flat-23.raw');
    await runTool('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', local(qcow2), flat]);
    expect(await blkid(flat, 'TYPE')).toBe('ext4');
  });

  it('makes a swap area labelled swap for FORMAT swap', async () => {
    const source = await mkfs(24, { format: 'swap', size: 8 });
    expect(await blkid(local(source), 'TYPE')).toBe('swap');
    expect(await blkid(local(source), 'LABEL')).toBe('swap');
    expect(storedFormat(local(source))).toBe('raw');
  });

  it('only names the image for a save-as: nothing is created', async () => {
    const before = layout(local(BASE));
    const source = await mkfs(25, { format: 'save_as', size: 8 });
    expect(existsSync(local(source))).toBe(false);
    expect(layout(local(BASE))).toEqual(before);
  });

  it('refuses an FS outside the allow-list as data: nothing runs, nothing is created', async () => {
    const marker = join(stack.baseDir, 'pwned');
    const before = layout(local(BASE));
    const r = await dsAction(
      stack,
      'mkfs',
      26,
      actionData({ image: { id: 26, format: 'raw', size: 8, fs: `ext4;touch ${marker}` } }),
    );
    expectFailure(
      r,
      /^mkfs failed: image 26: \/DS_DRIVER_ACTION_DATA\/IMAGE\/FS "ext4;touch .*pwned" is not a supported filesystem \(ext2, ext3, ext4, xfs, vfat\)$/,
    );
    expect(existsSync(marker)).toBe(false);
    expect(layout(local(BASE))).toEqual(before);
  });

  it.each([
    [
      'a FORMAT mkfs does not make',
      { format: 'vmdk', size: 8 },
      /IMAGE\/FORMAT "vmdk" is not one mkfs makes \(raw, qcow2, swap, save_as\)$/,
    ],
    [
      'no SIZE',
      { format: 'raw', size: null },
      /^mkfs failed: image 27: \/DS_DRIVER_ACTION_DATA\/IMAGE\/SIZE is missing or empty$/,
    ],
    ['a zero SIZE', { format: 'raw', size: 0 }, /IMAGE\/SIZE must be positive, got 0$/],
  ])('refuses %s in one line', async (_what, image, message) => {
    const before = layout(local(BASE));
    const r = await dsAction(stack, 'mkfs', 27, actionData({ image: { id: 27, ...image } }));
    expectFailure(r, message);
    expect(layout(local(BASE))).toEqual(before);
  });

  it('answers a wrong argument count and a bad stdin with the usage line', async () => {
    const none = await runAction(stack.remotesDir, 'datastore', DS_DRIVER, 'mkfs', [], actionData());
    expectFailure(none, /^mkfs failed: expected 1 arguments \(image_id\), got 0$/);
    const bad = await dsAction(stack, 'mkfs', 7, 'not base64 at all!');
    expectFailure(bad, /^mkfs failed: stdin: expected DS_DRIVER_ACTION_DATA in base64, got something else$/);
  });
});

describe('rm', () => {
  function plant(source: string, companions: boolean): void {
    const file = local(source);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, 'image');
    if (companions) {
      mkdirSync(`${file}.snap`, { recursive: true });
      writeFileSync(`${file}.snap/0`, 'snapshot');
      writeFileSync(`${file}.md5sum`, 'cached');
    }
  }

  it('deletes SOURCE, SOURCE.snap and SOURCE.md5sum, and prints nothing', async () => {
    const source = `${BASE}/0123456789abcdef0123456789abcdef`;
    plant(source, true);
    const r = await dsAction(stack, 'rm', 30, actionData({ image: { id: 30, source } }));
    expect(expectSuccess(r)).toBe('');
    expect(infoLines(r)).toContain(`Removing ${source} from the image repository`);
    for (const p of ['', '.snap', '.md5sum']) expect(existsSync(local(`${source}${p}`))).toBe(false);
  });

  it('succeeds when the image is already gone, and again on a repeat', async () => {
    const source = `${BASE}/00000000000000000000000000000031`;
    plant(source, false);
    const stdin = actionData({ image: { id: 31, source } });
    expect(expectSuccess(await dsAction(stack, 'rm', 31, stdin))).toBe('');
    const again = await dsAction(stack, 'rm', 31, stdin);
    expect(expectSuccess(again)).toBe('');
    expect(infoLines(again).join('\n')).toMatch(/already gone/);
  });

  it('accepts BASE_PATH and SOURCE written differently for the same place (// and a trailing /)', async () => {
    const source = `${BASE}/00000000000000000000000000000032`;
    plant(source, false);
    const r = await dsAction(
      stack,
      'rm',
      32,
      actionData({
        image: { id: 32, source: '/var/lib/one//datastores/1/00000000000000000000000000000032' },
        datastore: { basePath: '/var/lib/one/datastores/1/' },
      }),
    );
    expectSuccess(r);
    expect(existsSync(local(source))).toBe(false);
  });

  it.each([
    ['in another datastore', '/var/lib/one/datastores/0/42/disk.0'],
    ['through ..', `${BASE}/../0/42/disk.0`],
    ['the datastore itself', BASE],
    ['below an image', `${BASE}/00000000000000000000000000000033.snap/0`],
  ])('refuses a SOURCE %s and deletes nothing', async (_what, source) => {
    const victim = '/var/lib/one/datastores/0/42/disk.0';
    plant(victim, false);
    plant(`${BASE}/00000000000000000000000000000033`, true);
    const before = layout(local('/var/lib/one/datastores/0'));
    const beforeDs = layout(local(BASE));
    const r = await dsAction(stack, 'rm', 33, actionData({ image: { id: 33, source } }));
    expectFailure(
      r,
      /^rm failed: image 33: SOURCE ".*" does not lie directly in the datastore's BASE_PATH \/var\/lib\/one\/datastores\/1: refusing to delete it$/,
    );
    expect(layout(local('/var/lib/one/datastores/0'))).toEqual(before);
    expect(layout(local(BASE))).toEqual(beforeDs);
  });

  it('refuses a call without SOURCE', async () => {
    const r = await dsAction(stack, 'rm', 34, actionData({ image: { id: 34, source: '' } }));
    expectFailure(r, /^rm failed: image 34: \/DS_DRIVER_ACTION_DATA\/IMAGE\/SOURCE is missing or empty$/);
  });
});
