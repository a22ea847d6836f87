import {
  existsSync,
  lstatSync,
  mkdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import {
  BackingStyle,
  ImageFormat,
  type LinkImageRequest,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { ds, makeTempDir } from '../../../test/support/agent/agent-fixture.js';
import {
  KIB,
  localAgent,
  patternMismatches,
  qemuImg,
  storedBackingNames,
  writePattern,
} from '../../../test/support/agent/disk-testing.js';
import { linkImage } from './link-image.js';
import { snapshotCreate } from './snapshot-create.js';
import { wireFormat } from '../../../test/support/wire-enums.js';

const base = await makeTempDir('link-image-');
const root = join(base, 'datastores');
mkdirSync(join(root, '0'), { recursive: true });
mkdirSync(join(root, '1'), { recursive: true });
const { agent, call } = localAgent(root);
const local = (rel: string): string => join(root, rel);
afterAll(() => rmSync(base, { recursive: true, force: true }));

const SIZE = '16M';
const DATA = 256 * KIB;
const IMAGE_BYTE = 0xaa;
const GUEST_BYTE = 0xbb;

const req = (vm: string, image: string): LinkImageRequest => ({
  source: ds(`1/${image}`),
  diskPath: ds(`0/${vm}/disk.0`),
  // What oned knows: the raw test images are named r*.
  format: wireFormat(image.startsWith('r') ? 'raw' : 'qcow2'),
});

async function image(name: string, format: 'raw' | 'qcow2'): Promise<string> {
  const file = local(`1/${name}`);
  await qemuImg('create', '-q', '-f', format, file, SIZE);
  await writePattern(file, format, IMAGE_BYTE, 0, DATA);
  return file;
}

async function failure(p: Promise<unknown>): Promise<StorageError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

describe('LinkImage (qcow2/shared ln of a persistent image)', () => {
  it('qcow2: <IMG>.snap/0 -> IMG, the self link, disk.0 -> <IMG>.snap/0 (relative); the VM writes into the image', async () => {
    const img = await image('p1', 'qcow2');
    // A snap dir left in the VM dir by an earlier clone goes.
    mkdirSync(local('0/20/disk.0.snap'), { recursive: true });
    writeFileSync(local('0/20/disk.0.snap/0'), 'stale');
    for (let i = 0; i < 3; i++)
      expect(await linkImage(agent, req('20', 'p1'), call)).toEqual({ snapshotId: 0 });
    expect(readlinkSync(local('1/p1.snap/0'))).toBe('../p1');
    expect(readlinkSync(local('1/p1.snap/p1.snap'))).toBe('.');
    const disk = local('0/20/disk.0');
    expect(readlinkSync(disk)).toBe('../../1/p1.snap/0');
    expect(existsSync(local('0/20/disk.0.snap'))).toBe(false);
    expect(await patternMismatches(disk, 'qcow2', [{ offset: 0, length: DATA, byte: IMAGE_BYTE }])).toEqual(
      [],
    );
    await writePattern(disk, 'qcow2', GUEST_BYTE, 0, DATA);
    expect(await patternMismatches(img, 'qcow2', [{ offset: 0, length: DATA, byte: GUEST_BYTE }])).toEqual(
      [],
    );
  });

  it('qcow2 with snapshots: disk.0 -> the highest numbered entry, and snapshots keep working', async () => {
    const img = await image('p2', 'qcow2');
    await linkImage(agent, req('21', 'p2'), call);
    const snap = {
      diskPath: ds('0/21/disk.0'),
      format: ImageFormat.IMAGE_FORMAT_QCOW2,
      snapDir: ds('1/p2.snap'),
      backingStyle: BackingStyle.BACKING_STYLE_RELATIVE,
      live: undefined,
    };
    await snapshotCreate(agent, { ...snap, snapId: 0 }, call);
    await snapshotCreate(agent, { ...snap, snapId: 1 }, call);
    rmSync(local('0/21'), { recursive: true });
    // The image runs on in another VM: its latest layer is 2.
    for (let i = 0; i < 2; i++)
      expect(await linkImage(agent, req('22', 'p2'), call)).toEqual({ snapshotId: 2 });
    const disk = local('0/22/disk.0');
    expect(readlinkSync(disk)).toBe('../../1/p2.snap/2');
    expect(await storedBackingNames(disk)).toEqual(['../../1/p2.snap/1', '../../1/p2.snap/0', undefined]);
    expect(readlinkSync(local('1/p2.snap/0'))).toBe('../p2');
    expect(realpathSync(local('1/p2.snap/0'))).toBe(realpathSync(img));
    expect(await patternMismatches(disk, 'qcow2', [{ offset: 0, length: DATA, byte: IMAGE_BYTE }])).toEqual(
      [],
    );
  });

  it('raw: disk.0 -> IMG', async () => {
    const img = await image('r1', 'raw');
    for (let i = 0; i < 2; i++)
      expect(await linkImage(agent, req('23', 'r1'), call)).toEqual({ snapshotId: 0 });
    expect(readlinkSync(local('0/23/disk.0'))).toBe('../../1/r1');
    expect(realpathSync(local('0/23/disk.0'))).toBe(realpathSync(img));
    expect(existsSync(local('1/r1.snap'))).toBe(false);
  });

  it('replaces a plain disk file left by an earlier clone', async () => {
    await image('p3', 'qcow2');
    mkdirSync(local('0/24'), { recursive: true });
    writeFileSync(local('0/24/disk.0'), 'stale');
    await linkImage(agent, req('24', 'p3'), call);
    expect(lstatSync(local('0/24/disk.0')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(local('0/24/disk.0'))).toBe('../../1/p3.snap/0');
  });

  it('a missing source is NOT_FOUND and creates nothing', async () => {
    const err = await failure(linkImage(agent, req('25', 'nope'), call));
    expect(err.reason).toBe('NOT_FOUND');
    expect(err.message).toContain(`host01:${ds('1/nope')}`);
    expect(existsSync(local('0/25'))).toBe(false);
    expect(existsSync(local('1/nope.snap'))).toBe(false);
  });

  it('a source outside the roots is refused, directly or through a symlink', async () => {
    const direct = await failure(linkImage(agent, { ...req('26', 'x'), source: '/etc/hostname' }, call));
    expect(direct.reason).toBe('PATH_OUTSIDE_ROOTS');
    expect(direct.message).toContain('host01:/etc/hostname');
    symlinkSync('/etc/hostname', local('1/evil'));
    expect((await failure(linkImage(agent, req('26', 'evil'), call))).reason).toBe('PATH_OUTSIDE_ROOTS');
    expect(existsSync(local('0/26'))).toBe(false);
  });

  it('refuses a self link that is not a link to "."', async () => {
    await image('p4', 'qcow2');
    mkdirSync(local('1/p4.snap'));
    writeFileSync(local('1/p4.snap/p4.snap'), 'x');
    expect((await failure(linkImage(agent, req('27', 'p4'), call))).reason).toBe('BAD_LAYOUT');
  });

  it('refuses disk_path equal to the source', async () => {
    await image('p5', 'qcow2');
    const err = await failure(
      linkImage(
        agent,
        { source: ds('1/p5'), diskPath: ds('1/p5'), format: ImageFormat.IMAGE_FORMAT_QCOW2 },
        call,
      ),
    );
    expect(err.reason).toBe('INVALID_ARGUMENT');
  });
});
