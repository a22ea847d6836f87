import { existsSync, lstatSync, mkdirSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { ds, makeTempDir } from '../../../test/support/agent/agent-fixture.js';
import {
  KIB,
  checkClean,
  localAgent,
  patternMismatches,
  qemuImg,
  storedBackingNames,
  writePattern,
} from '../../../test/support/agent/disk-testing.js';
import { copyImageChain } from './copy-image-chain.js';
import { linkImage } from './link-image.js';
import { saveImageChain } from './save-image-chain.js';
import { snapshotCreate } from './snapshot-create.js';
import { BackingStyle, ImageFormat } from '../../../proto/gen/onestorage/agent/v1/agent.js';

const base = await makeTempDir('image-chain-');
const root = join(base, 'datastores');
mkdirSync(join(root, '0'), { recursive: true });
mkdirSync(join(root, '1'), { recursive: true });
const { agent, call } = localAgent(root);
const local = (rel: string): string => join(root, rel);
afterAll(() => rmSync(base, { recursive: true, force: true }));

const SIZE = '16M';
const DATA = 256 * KIB;
const A = 0xaa;
const B = 0xbb;
const C = 0xcc;

async function image(name: string, format: 'raw' | 'qcow2'): Promise<string> {
  const file = local(`1/${name}`);
  await qemuImg('create', '-q', '-f', format, file, SIZE);
  await writePattern(file, format, A, 0, DATA);
  return file;
}

async function chainFiles(file: string): Promise<string[]> {
  const json = JSON.parse(await qemuImg('info', '-U', '--output=json', '--backing-chain', file)) as Array<
    Record<string, unknown>
  >;
  return json.map((l) => realpathSync(l['filename'] as string));
}

async function failure(p: Promise<unknown>): Promise<StorageError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

const reads = (file: string, ...r: Array<[number, number]>): Promise<string[]> =>
  patternMismatches(
    file,
    'qcow2',
    r.map(([offset, byte]) => ({ offset, length: DATA, byte })),
  );

describe('CopyImageChain / SaveImageChain (qcow2/shared ln.ssh and mvds.ssh)', () => {
  it('copies a persistent image with a snapshot to a local chain and saves the local writes back', async () => {
    const img = await image('p1', 'qcow2');
    // As LinkImage + SnapshotCreate leave it: <IMG>.snap/0 -> IMG, 1 backed by <IMG>.snap/0.
    await linkImage(
      agent,
      { source: ds('1/p1'), diskPath: ds('0/10/disk.0'), format: ImageFormat.IMAGE_FORMAT_QCOW2 },
      call,
    );
    await snapshotCreate(
      agent,
      {
        diskPath: ds('0/10/disk.0'),
        format: ImageFormat.IMAGE_FORMAT_QCOW2,
        snapDir: ds('1/p1.snap'),
        backingStyle: BackingStyle.BACKING_STYLE_RELATIVE,
        snapId: 0,
        live: undefined,
      },
      call,
    );
    await writePattern(local('0/10/disk.0'), 'qcow2', B, DATA, DATA);
    rmSync(local('0/10'), { recursive: true });
    expect(await storedBackingNames(local('1/p1.snap/1'))).toEqual(['../../1/p1.snap/0', undefined]);

    const copy = { source: ds('1/p1'), diskPath: ds('0/30/disk.0'), format: ImageFormat.IMAGE_FORMAT_QCOW2 };
    for (let i = 0; i < 2; i++) expect(await copyImageChain(agent, copy, call)).toEqual({ snapshotId: 1 });
    const disk = local('0/30/disk.0');
    expect(readlinkSync(disk)).toBe('disk.0.snap/1');
    expect(readlinkSync(local('0/30/disk.0.snap/disk.0.snap'))).toBe('.');
    expect(lstatSync(local('0/30/disk.0.snap/0')).isFile()).toBe(true);
    expect(await storedBackingNames(disk)).toEqual(['disk.0.snap/0', undefined]);
    const vmDir = realpathSync(local('0/30'));
    for (const f of await chainFiles(disk)) expect(f.startsWith(`${vmDir}/`)).toBe(true);
    expect(await reads(disk, [0, A], [DATA, B])).toEqual([]);
    await checkClean(disk);

    // Writes through disk.0 stay local.
    await writePattern(disk, 'qcow2', C, 2 * DATA, DATA);
    expect(await reads(local('1/p1.snap/1'), [0, A], [DATA, B], [2 * DATA, 0])).toEqual([]);
    expect(lstatSync(img).isFile()).toBe(true);

    const save = { diskPath: ds('0/30/disk.0'), source: ds('1/p1'), format: ImageFormat.IMAGE_FORMAT_QCOW2 };
    for (let i = 0; i < 2; i++) expect(await saveImageChain(agent, save, call)).toEqual({ snapshotId: 1 });
    expect(lstatSync(img).isSymbolicLink()).toBe(true);
    expect(readlinkSync(img)).toBe('p1.snap/1');
    expect(readlinkSync(local('1/p1.snap/p1.snap'))).toBe('.');
    expect(lstatSync(local('1/p1.snap/0')).isFile()).toBe(true);
    // OpenNebula's mvds.ssh names: `<hash>.snap/K`, resolved from SOURCE's directory and the self link.
    expect(await storedBackingNames(img)).toEqual(['p1.snap/0', undefined]);
    const imageDs = realpathSync(local('1'));
    for (const f of await chainFiles(img)) expect(f.startsWith(`${imageDs}/p1.snap/`)).toBe(true);
    expect(JSON.parse(await qemuImg('info', '-U', '--output=json', img))).toMatchObject({ format: 'qcow2' });
    expect(await reads(img, [0, A], [DATA, B], [2 * DATA, C])).toEqual([]);
    await checkClean(img);

    // The saved image links and copies again.
    expect(
      await linkImage(
        agent,
        { source: ds('1/p1'), diskPath: ds('0/31/disk.0'), format: ImageFormat.IMAGE_FORMAT_QCOW2 },
        call,
      ),
    ).toEqual({
      snapshotId: 1,
    });
    expect(
      await copyImageChain(
        agent,
        { source: ds('1/p1'), diskPath: ds('0/32/disk.0'), format: ImageFormat.IMAGE_FORMAT_QCOW2 },
        call,
      ),
    ).toEqual({
      snapshotId: 1,
    });
    expect(await reads(local('0/32/disk.0'), [0, A], [DATA, B], [2 * DATA, C])).toEqual([]);
    expect(await storedBackingNames(local('0/32/disk.0'))).toEqual(['disk.0.snap/0', undefined]);
  });

  it('qcow2 without a snap dir: disk.0 -> disk.0.snap/0, a standalone copy; saved back as <IMG>.snap/0', async () => {
    const img = await image('p2', 'qcow2');
    const copy = { source: ds('1/p2'), diskPath: ds('0/33/disk.0'), format: ImageFormat.IMAGE_FORMAT_QCOW2 };
    expect(await copyImageChain(agent, copy, call)).toEqual({ snapshotId: 0 });
    const disk = local('0/33/disk.0');
    expect(readlinkSync(disk)).toBe('disk.0.snap/0');
    expect(await storedBackingNames(disk)).toEqual([undefined]);
    expect(existsSync(local('1/p2.snap'))).toBe(false);
    await writePattern(disk, 'qcow2', B, 0, DATA);
    expect(await reads(img, [0, A])).toEqual([]);
    expect(
      await saveImageChain(
        agent,
        { diskPath: copy.diskPath, source: copy.source, format: copy.format },
        call,
      ),
    ).toEqual({
      snapshotId: 0,
    });
    expect(readlinkSync(img)).toBe('p2.snap/0');
    expect(await reads(img, [0, B])).toEqual([]);
  });

  it('flattens a layer backed by a file outside the snap dir', async () => {
    await image('b3', 'qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-b', local('1/b3'), '-F', 'qcow2', local('1/p3'));
    await writePattern(local('1/p3'), 'qcow2', B, DATA, DATA);
    await copyImageChain(
      agent,
      { source: ds('1/p3'), diskPath: ds('0/34/disk.0'), format: ImageFormat.IMAGE_FORMAT_QCOW2 },
      call,
    );
    const disk = local('0/34/disk.0');
    expect(await storedBackingNames(disk)).toEqual([undefined]);
    expect(await reads(disk, [0, A], [DATA, B])).toEqual([]);
  });

  it('raw: plain copies both ways', async () => {
    const img = await image('r1', 'raw');
    const copy = { source: ds('1/r1'), diskPath: ds('0/35/disk.0'), format: ImageFormat.IMAGE_FORMAT_RAW };
    for (let i = 0; i < 2; i++) expect(await copyImageChain(agent, copy, call)).toEqual({ snapshotId: 0 });
    const disk = local('0/35/disk.0');
    expect(lstatSync(disk).isFile()).toBe(true);
    await writePattern(disk, 'raw', B, 0, DATA);
    expect(await patternMismatches(img, 'raw', [{ offset: 0, length: DATA, byte: A }])).toEqual([]);
    for (let i = 0; i < 2; i++)
      expect(
        await saveImageChain(
          agent,
          { diskPath: copy.diskPath, source: copy.source, format: copy.format },
          call,
        ),
      ).toEqual({
        snapshotId: 0,
      });
    expect(lstatSync(img).isFile()).toBe(true);
    expect(await patternMismatches(img, 'raw', [{ offset: 0, length: DATA, byte: B }])).toEqual([]);
  });

  it('a LinkImage disk is already in place: SaveImageChain changes nothing', async () => {
    const img = await image('p4', 'qcow2');
    await linkImage(
      agent,
      { source: ds('1/p4'), diskPath: ds('0/36/disk.0'), format: ImageFormat.IMAGE_FORMAT_QCOW2 },
      call,
    );
    expect(
      await saveImageChain(
        agent,
        { diskPath: ds('0/36/disk.0'), source: ds('1/p4'), format: ImageFormat.IMAGE_FORMAT_QCOW2 },
        call,
      ),
    ).toEqual({
      snapshotId: 0,
    });
    expect(lstatSync(img).isFile()).toBe(true);
    expect(readlinkSync(local('1/p4.snap/0'))).toBe('../p4');
  });

  it('a missing source or disk is NOT_FOUND and creates nothing', async () => {
    const err = await failure(
      copyImageChain(
        agent,
        { source: ds('1/nope'), diskPath: ds('0/37/disk.0'), format: ImageFormat.IMAGE_FORMAT_QCOW2 },
        call,
      ),
    );
    expect(err.reason).toBe('NOT_FOUND');
    expect(existsSync(local('0/37'))).toBe(false);
    expect(existsSync(local('1/nope.snap'))).toBe(false);
    const save = await failure(
      saveImageChain(
        agent,
        { diskPath: ds('0/37/disk.0'), source: ds('1/nope'), format: ImageFormat.IMAGE_FORMAT_QCOW2 },
        call,
      ),
    );
    expect(save.reason).toBe('NOT_FOUND');
    expect(existsSync(local('1/nope'))).toBe(false);
  });

  it('refuses disk_path equal to the source', async () => {
    await image('p5', 'qcow2');
    const err = await failure(
      copyImageChain(
        agent,
        { source: ds('1/p5'), diskPath: ds('1/p5'), format: ImageFormat.IMAGE_FORMAT_QCOW2 },
        call,
      ),
    );
    expect(err.reason).toBe('INVALID_ARGUMENT');
  });
});
