import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { Roots } from '../paths/roots.js';
import type { ImageFormat } from './qemu-img.js';
import { readChain } from './safe-chain.js';

/** readChain against real qemu-img images in a scratch root served as /var/lib/one/datastores. */
const LOCATION = '/var/lib/one/datastores';
let root: string;
let roots: Roots;
const local = (rel: string): string => join(root, rel);

async function qcow2(
  rel: string,
  backing?: string,
  backingFormat = 'qcow2',
  extra: string[] = [],
): Promise<void> {
  mkdirSync(join(local(rel), '..'), { recursive: true });
  const b = backing === undefined ? [] : ['-u', '-F', backingFormat, '-b', backing];
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', ...b, ...extra, local(rel), '1M']);
}

async function raw(rel: string): Promise<void> {
  mkdirSync(join(local(rel), '..'), { recursive: true });
  await runTool('qemu-img', ['create', '-q', '-f', 'raw', local(rel), '1M']);
}

const chain = (rel: string, format: ImageFormat = 'qcow2') =>
  readChain(local(rel), format, { what: `test ${rel}`, scope: roots });

async function refusal(rel: string, format: ImageFormat = 'qcow2'): Promise<StorageError> {
  const err = await chain(rel, format).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

beforeAll(async () => {
  root = join(await mkdtemp(join(tmpdir(), 'safe-chain-')), 'ds');
  roots = new Roots('host01', [{ location: LOCATION, path: root }]);
  await raw('1/image');
  await qcow2('1/qimage');
  await raw('0/43/disk.0');
});

afterAll(() => rmSync(join(root, '..'), { recursive: true, force: true }));

describe('readChain: one validated layer at a time', () => {
  it('a raw image is one layer, whatever its bytes say', async () => {
    await qcow2('0/40/disk.0', '../43/disk.0', 'raw');
    expect((await chain('0/40/disk.0', 'raw')).map((l) => [l.format, l.backingFilename])).toEqual([
      ['raw', undefined],
    ]);
  });

  it.each([
    ['an absolute local name', () => local('1/image')],
    ["oned's name, translated to this host", () => `${LOCATION}/1/image`],
    ['a relative name', () => '../../1/image'],
  ])('follows %s into the image datastore', async (_name, backing) => {
    const rel = `0/41/disk.${backing().length}`;
    await qcow2(rel, backing(), 'raw');
    expect((await chain(rel)).map((l) => l.format)).toEqual(['qcow2', 'raw']);
  });

  it('follows a snap dir chain through its self link', async () => {
    await qcow2('0/44/disk.0.snap/0', local('1/qimage'));
    symlinkSync('.', local('0/44/disk.0.snap/disk.0.snap'));
    await qcow2('0/44/disk.0.snap/1', 'disk.0.snap/0');
    symlinkSync('disk.0.snap/1', local('0/44/disk.0'));
    expect((await chain('0/44/disk.0')).map((l) => l.filename)).toEqual([
      local('0/44/disk.0'),
      // Opened through disk.0, the relative name resolves in the VM directory, as qemu resolves it.
      local('0/44/disk.0.snap/0'),
      local('1/qimage'),
    ]);
    expect((await chain('0/44/disk.0.snap/1')).map((l) => l.filename)).toEqual([
      local('0/44/disk.0.snap/1'),
      // From inside the snap dir, through its self link.
      local('0/44/disk.0.snap/disk.0.snap/0'),
      local('1/qimage'),
    ]);
  });

  it.each([
    ['json:', 'json:{"driver":"nbd","server":{"type":"inet","host":"127.0.0.1","port":"1"}}', 'BAD_LAYOUT'],
    ['nbd:', 'nbd:127.0.0.1:1', 'BAD_LAYOUT'],
    ['https://', 'https://127.0.0.1/x', 'BAD_LAYOUT'],
    ["another VM's disk", '../43/disk.0', 'BAD_LAYOUT'],
    ['a path outside the roots', '/etc/hostname', 'PATH_OUTSIDE_ROOTS'],
  ])('refuses a backing name that is %s', async (_name, backing, reason) => {
    const rel = `0/45/disk.${reason.length}-${backing.length}`;
    await qcow2(rel, backing, 'raw');
    const err = await refusal(rel);
    expect(err.reason).toBe(reason);
    expect(err.message).toContain('host01:');
  });

  it('refuses a loop, a foreign backing format, and an external data file', async () => {
    await qcow2('0/46/a', 'b');
    await qcow2('0/46/b', 'a');
    expect((await refusal('0/46/a')).message).toMatch(/refers to itself/);
    await qcow2('0/46/vmdk', local('1/image'), 'vmdk');
    expect((await refusal('0/46/vmdk')).message).toMatch(/backing format "vmdk"/);
    await raw('0/46/data');
    await qcow2('0/46/with-data-file', undefined, 'qcow2', ['-o', `data_file=${local('0/46/data')}`]);
    expect((await refusal('0/46/with-data-file')).message).toMatch(/external data file/);
  });

  it('refuses a file that is not qcow2 as oned says it is', async () => {
    expect((await refusal('1/image')).message).toMatch(/is not a qcow2 image/);
  });
});
