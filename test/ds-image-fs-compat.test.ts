// OpenNebula's fs driver and ours on one datastore, through the shims against a real agent: images
// fs registered (and OpenNebula's TM drivers left) are handled by ours, and the images ours
// registers are what OpenNebula's TM drivers expect to read (docs/image-datastore.md#where-an-image-lives,
// docs/image-datastore.md#snapshots-of-persistent-images).
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, md5File, writePattern } from '../cli/src/demo/demo-images.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { holdsPattern } from './support/assertions.js';
import { actionData, type ImageXmlOptions } from './support/ds-action-data.js';
import { dsAction, expectSuccess, storedFormat } from './support/ds-image-stack.js';
import { downloadExport, importInfo, printedImage } from './support/ds-image-life.js';
import { imageInfo, imagesIdentical, layout } from './support/files.js';
import { startImageServer, type ImageServer } from './support/image-server.js';

type Format = 'raw' | 'qcow2';
const DS = 1;
const BASE = `${ONED_DATASTORE_LOCATION}/${DS}`;
const SIZE_MB = 8;
const AT_2M = 2 * MIB;
/** What a VM wrote: before snapshot 0, before snapshot 1 (at 0 and 2 MiB), after snapshot 1. */
const SNAP0 = 0xa0;
const SNAP1 = 0xa1;
const SNAP1_AT_2M = 0xa2;
const AFTER = 0xa3;

let work: string;
let stack: Stack;
let images: ImageServer;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ds-fs-compat-'));
  images = await startImageServer();
  stack = await Stack.start({
    hosts: ['frontend'],
    agentSettings: () => ({ export: { listen: '127.0.0.1:0' } }),
  });
});

afterAll(async () => {
  await stack?.stop();
  await images?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const local = (path: string): string => stack.localPath('frontend', path);
const holds = (file: string, format: Format, pattern: number, offset = 0): Promise<boolean> =>
  holdsPattern(file, pattern, offset, format);
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

/** fs's name for image `id` registered at `seconds`: the md5sum tool's digest of "<seconds>:<id>\n". */
function fsName(seconds: number, id: number): string {
  return execFileSync('md5sum', { input: `${seconds}:${id}\n`, encoding: 'utf8' }).split(' ')[0] as string;
}

/** A DS action on image `id` of datastore 1 (TM_MAD as OpenNebula's qcow2 or ssh TM set it). */
function ds(action: string, arg: number, image: ImageXmlOptions, tmMad = 'ssh'): Promise<string> {
  const stdin = actionData({
    image: { size: SIZE_MB, ...image },
    datastore: { id: DS, tmMad, template: { TM_MAD: tmMad } },
  });
  return dsAction(stack, action, arg, stdin).then(expectSuccess);
}

describe.each(['raw', 'qcow2'] as const)('a %s image as fs cp left it, used by the ssh TM', (format) => {
  const id = format === 'raw' ? 30 : 31;
  const source = `${BASE}/${fsName(Math.floor(Date.now() / 1000), id)}`;
  const image = { id, source, format, persistent: 1 };
  let clone: string;

  beforeAll(async () => {
    // `BASE_PATH/<hash>`, a plain file; the ssh TM's mvds brought back full copies in SOURCE.snap
    // and the VM's last state into SOURCE; its replica cache left SOURCE.md5sum.
    const file = local(source);
    await makeImage(file, format, SIZE_MB, SNAP0);
    mkdirSync(`${file}.snap`);
    copyFileSync(file, `${file}.snap/0`);
    await writePattern(file, format, SNAP1, 0, MIB);
    await writePattern(file, format, SNAP1_AT_2M, AT_2M, MIB);
    copyFileSync(file, `${file}.snap/1`);
    await writePattern(file, format, AFTER, 0, MIB);
    writeFileSync(`${file}.md5sum`, `${await md5File(file)}\n`);
  });

  it('clone copies its current state into a standalone image of the same format', async () => {
    const out = await ds('clone', id + 10, { id: id + 10, path: source, format });
    clone = printedImage(out).source;
    expect(printedImage(out).format).toBe(format);
    expect((await imageInfo(local(clone), format))['backing-filename']).toBeUndefined();
    expect(await imagesIdentical(local(source), format, local(clone), format)).toBe(true);
  });

  it('export serves it byte for byte with its MD5', async () => {
    const info = importInfo(await ds('export', 3, { ...image, persistent: 0 }));
    expect(info.FORMAT).toBe(format);
    const bytes = await downloadExport(stack, info.IMPORT_SOURCE);
    expect(md5(bytes)).toBe(info.MD5);
    expect(info.MD5).toBe(await md5File(local(source)));
  });

  it('snap_revert, snap_delete and snap_flatten work on its full copies; the stale .md5sum goes', async () => {
    const file = local(source);
    expect(await ds('snap_revert', id, { ...image, targetSnapshot: 0 })).toBe('');
    expect(await holds(file, format, SNAP0)).toBe(true);
    expect(await holds(file, format, 0x00, AT_2M)).toBe(true);
    expect(existsSync(`${file}.md5sum`)).toBe(false);
    expect(await ds('snap_delete', id, { ...image, targetSnapshot: 0 })).toBe('');
    expect(readdirSync(`${file}.snap`)).toEqual(['1']);
    expect(await ds('snap_flatten', id, { ...image, targetSnapshot: 1 })).toBe('');
    expect(await holds(file, format, SNAP1)).toBe(true);
    expect(await holds(file, format, SNAP1_AT_2M, AT_2M)).toBe(true);
    expect(storedFormat(file)).toBe(format);
    expect(existsSync(`${file}.snap`)).toBe(false);
  });

  it('rm removes it and its clone, leaving the datastore empty', async () => {
    writeFileSync(`${local(source)}.md5sum`, 'cached\n');
    expect(await ds('rm', id, image)).toBe('');
    expect(await ds('rm', id + 10, { id: id + 10, source: clone, format })).toBe('');
    expect(layout(local(BASE))).toEqual([]);
  });
});

describe("what our cp registers, as fs names it and OpenNebula's TM drivers read it", () => {
  let qcow2: Buffer;
  let raw: Buffer;

  beforeAll(async () => {
    await makeImage(join(work, 'in.qcow2'), 'qcow2', SIZE_MB, 0x51);
    await makeImage(join(work, 'in.raw'), 'raw', SIZE_MB, 0x52);
    qcow2 = readFileSync(join(work, 'in.qcow2'));
    raw = readFileSync(join(work, 'in.raw'));
  });

  it.each([
    ['a qcow2', 40, () => images.serve('/fs.qcow2', qcow2), {}, 'qcow2', 0x51],
    ['a raw image', 41, () => images.serve('/fs.raw', raw), {}, 'raw', 0x52],
    [
      'a raw image with DRIVER=qcow2',
      42,
      () => images.serve('/fs.raw', raw),
      { DRIVER: 'qcow2' },
      'qcow2',
      0x52,
    ],
  ] as const)(
    '%s: BASE_PATH/<md5 of "<epoch>:<id>\\n">, a plain standalone file in FORMAT',
    async (_what, id, url, template, format, pattern) => {
      const before = Date.now();
      const out = await dsAction(
        stack,
        'cp',
        id,
        actionData({ image: { id, path: url(), format: null }, datastore: { id: DS, template } }),
      ).then(expectSuccess);
      const after = Date.now();
      const printed = printedImage(out);
      expect(printed.format).toBe(format);
      const names: string[] = [];
      for (let s = Math.floor(before / 1000); s <= Math.floor(after / 1000); s++)
        names.push(`${BASE}/${fsName(s, id)}`);
      expect(names).toContain(printed.source);
      const file = local(printed.source);
      // tm/ssh copies SOURCE with tar and qcow2's clone builds an overlay on it: a plain file...
      expect(lstatSync(file).isFile()).toBe(true);
      expect(existsSync(`${file}.snap`)).toBe(false);
      // ... standalone in the stated format ...
      const info = await imageInfo(file, format);
      expect(info.format).toBe(format);
      expect(info['backing-filename']).toBeUndefined();
      expect(info['virtual-size']).toBe(SIZE_MB * MIB);
      // ... that qemu-img converts (qcow2's clone.ssh, QCOW2_STANDALONE) and overlays (qcow2's clone).
      const converted = join(work, `converted-${id}`);
      await runTool('qemu-img', ['convert', '-q', '-f', format, '-O', 'qcow2', file, converted]);
      expect(await holds(converted, 'qcow2', pattern)).toBe(true);
      const overlay = join(work, `overlay-${id}`);
      await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', file, '-F', format, overlay]);
      expect(await holds(overlay, 'qcow2', pattern)).toBe(true);
      expect(await ds('rm', id, { id, ...printed })).toBe('');
    },
  );
});

describe("a persistent image OpenNebula's qcow2 TM used in place", () => {
  const id = 50;
  const source = `${BASE}/${fsName(Math.floor(Date.now() / 1000), id)}`;
  const image = { id, source, format: 'qcow2', persistent: 1 };
  const file = (): string => local(source);
  /** The active layer: the highest-numbered file of the snap dir (file 2 after two snapshots). */
  const active = (): string => `${file()}.snap/2`;
  const onShared = (action: string, targetSnapshot: number): Promise<string> =>
    ds(action, id, { ...image, targetSnapshot }, 'qcow2');

  beforeAll(async () => {
    // qcow2/ln: `.snap/0 -> SOURCE` and the self link; the VM writes into SOURCE until snap_create
    // 0, which puts an overlay 1 with an absolute backing name on `.snap/0`, and so on. The absolute
    // names are this host's (its DATASTORE_LOCATION is the agent's root here): OpenNebula writes
    // them so, and an agent opens them only there (docs/image-datastore.md#snapshots-of-persistent-images).
    const src = file();
    const snap = `${src}.snap`;
    await makeImage(src, 'qcow2', SIZE_MB, 0x11);
    mkdirSync(snap);
    symlinkSync(src, `${snap}/0`);
    symlinkSync('.', `${snap}/${basename(snap)}`);
    await writePattern(`${snap}/0`, 'qcow2', SNAP0, 0, MIB);
    for (const k of [1, 2]) {
      const args = ['create', '-q', '-f', 'qcow2', '-o', 'backing_fmt=qcow2', '-b', `${snap}/${k - 1}`];
      await runTool('qemu-img', [...args, `${snap}/${k}`]);
    }
    await writePattern(`${snap}/1`, 'qcow2', SNAP1, 0, MIB);
    await writePattern(`${snap}/1`, 'qcow2', SNAP1_AT_2M, AT_2M, MIB);
    await writePattern(`${snap}/2`, 'qcow2', AFTER, 0, MIB);
  });

  it('clone and export read its current state (the active layer), not the base SOURCE froze at', async () => {
    const out = await ds('clone', id + 1, { id: id + 1, path: source, format: 'qcow2' }, 'qcow2');
    const copy = printedImage(out);
    expect(await holds(local(copy.source), 'qcow2', AFTER)).toBe(true);
    expect(await holds(local(copy.source), 'qcow2', SNAP1_AT_2M, AT_2M)).toBe(true);
    expect(await ds('rm', id + 1, { id: id + 1, ...copy }, 'qcow2')).toBe('');
    const info = importInfo(await ds('export', 4, { ...image, persistent: 0 }, 'qcow2'));
    const exported = join(work, 'exported-in-place');
    writeFileSync(exported, await downloadExport(stack, info.IMPORT_SOURCE));
    expect(await holds(exported, 'qcow2', AFTER)).toBe(true);
  });

  it('snap_revert to 0 and to 1 give a new active layer on that snapshot, named as OpenNebula names it', async () => {
    expect(await onShared('snap_revert', 0)).toBe('');
    expect(await holds(active(), 'qcow2', SNAP0)).toBe(true);
    expect(await holds(active(), 'qcow2', 0x00, AT_2M)).toBe(true);
    expect((await imageInfo(active(), 'qcow2'))['backing-filename']).toBe(`${file()}.snap/0`);
    expect(await onShared('snap_revert', 1)).toBe('');
    expect(await holds(active(), 'qcow2', SNAP1)).toBe(true);
    expect(await holds(active(), 'qcow2', SNAP1_AT_2M, AT_2M)).toBe(true);
    expect((await imageInfo(active(), 'qcow2'))['backing-filename']).toBe(`${file()}.snap/1`);
    // OpenNebula's next qcow2 ln finds the layout it made: the base link, the self link, 0..2.
    // (sorted alike: where the hash-named link sorts among the digits depends on the hash)
    expect(layout(`${file()}.snap`)).toEqual(
      ['0 -> ' + file(), '1', '2', `${basename(file())}.snap -> .`].sort(),
    );
    await runTool('qemu-img', ['check', '-q', '-f', 'qcow2', active()]);
  });

  it('snap_flatten to 0 leaves SOURCE standalone with snapshot 0, no snap dir; rm then empties the datastore', async () => {
    expect(await onShared('snap_flatten', 0)).toBe('');
    expect(lstatSync(file()).isFile()).toBe(true);
    expect((await imageInfo(file(), 'qcow2'))['backing-filename']).toBeUndefined();
    expect(await holds(file(), 'qcow2', SNAP0)).toBe(true);
    expect(await holds(file(), 'qcow2', 0x00, AT_2M)).toBe(true);
    expect(existsSync(`${file()}.snap`)).toBe(false);
    expect(await ds('rm', id, image, 'qcow2')).toBe('');
    // Left: only the flattened copy the export above still serves; it goes when its URL expires
    // (docs/image-datastore.md#export-for-marketplaces).
    const left = layout(local(BASE));
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^\.[0-9a-f]{32}\.tmp-frontend-[0-9a-f]+$/);
  });
});
