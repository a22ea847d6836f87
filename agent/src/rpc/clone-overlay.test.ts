import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { type CloneOverlayRequest, ImageFormat } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { ds, makeTempDir } from '../../../test/support/agent/agent-fixture.js';
import {
  KIB,
  MIB,
  checkClean,
  localAgent,
  patternMismatches,
  qemuImg,
  storedBackingNames,
  writePattern,
} from '../../../test/support/agent/disk-testing.js';
import { cloneOverlay } from './clone-overlay.js';
import { wireFormat } from '../../../test/support/wire-enums.js';

const base = await makeTempDir('clone-overlay-');
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

function req(vm: string, image: string, extra: Partial<CloneOverlayRequest> = {}): CloneOverlayRequest {
  return {
    source: ds(`1/${image}`),
    diskPath: ds(`0/${vm}/disk.0`),
    standalone: false,
    sparse: true,
    // What oned knows: the raw test images are named r*.
    format: wireFormat(image.startsWith('r') ? 'raw' : 'qcow2'),
    ...extra,
  };
}

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

const hidden = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith('.'));
const chainInfo = async (file: string): Promise<Array<Record<string, unknown>>> =>
  JSON.parse(await qemuImg('info', '-U', '--output=json', '--backing-chain', file)) as Array<
    Record<string, unknown>
  >;

describe('CloneOverlay (qcow2/shared clone)', () => {
  it('qcow2: disk.0 -> disk.0.snap/0, an overlay on the image; guest writes stay out of the image', async () => {
    const img = await image('q1', 'qcow2');
    expect(await cloneOverlay(agent, req('10', 'q1'), call)).toEqual({
      format: ImageFormat.IMAGE_FORMAT_QCOW2,
    });
    const disk = local('0/10/disk.0');
    expect(readlinkSync(disk)).toBe('disk.0.snap/0');
    expect(readlinkSync(local('0/10/disk.0.snap/disk.0.snap'))).toBe('.');
    // Relative through the self link: it resolves from the VM dir and from the snap dir, on any host.
    expect(await storedBackingNames(disk)).toEqual(['disk.0.snap/../../../1/q1', undefined]);
    // (native realpath on a string join: path.join and the JS realpath fold `..` before the self link)
    expect(realpathSync.native(`${local('0/10/disk.0.snap')}/disk.0.snap/../../../1/q1`)).toBe(img);
    const chain = await chainInfo(disk);
    expect(chain.map((l) => l['format'])).toEqual(['qcow2', 'qcow2']);
    expect(chain[0]?.['backing-filename-format']).toBe('qcow2');
    expect(await patternMismatches(disk, 'qcow2', [{ offset: 0, length: DATA, byte: IMAGE_BYTE }])).toEqual(
      [],
    );

    await writePattern(disk, 'qcow2', GUEST_BYTE, 0, DATA);
    expect(await patternMismatches(img, 'qcow2', [{ offset: 0, length: DATA, byte: IMAGE_BYTE }])).toEqual(
      [],
    );
    await checkClean(img);
    expect(hidden(local('0/10'))).toEqual([]);
  });

  it('a repeat keeps the overlay that already holds guest writes', async () => {
    await image('q2', 'qcow2');
    await cloneOverlay(agent, req('11', 'q2'), call);
    const disk = local('0/11/disk.0');
    await writePattern(disk, 'qcow2', GUEST_BYTE, 0, DATA);
    const inode = lstatSync(local('0/11/disk.0.snap/0')).ino;
    for (let i = 0; i < 3; i++)
      expect(await cloneOverlay(agent, req('11', 'q2'), call)).toEqual({
        format: ImageFormat.IMAGE_FORMAT_QCOW2,
      });
    expect(lstatSync(local('0/11/disk.0.snap/0')).ino).toBe(inode);
    expect(await patternMismatches(disk, 'qcow2', [{ offset: 0, length: DATA, byte: GUEST_BYTE }])).toEqual(
      [],
    );
    expect(hidden(local('0/11'))).toEqual([]);
    expect(hidden(local('0/11/disk.0.snap'))).toEqual([]);
  });

  it('replaces a disk that is not the overlay layout (a plain file, a stale snap dir)', async () => {
    await image('q3', 'qcow2');
    mkdirSync(local('0/12/disk.0.snap'), { recursive: true });
    writeFileSync(local('0/12/disk.0'), 'stale');
    writeFileSync(local('0/12/disk.0.snap/5'), 'stale');
    await cloneOverlay(agent, req('12', 'q3'), call);
    expect(readlinkSync(local('0/12/disk.0'))).toBe('disk.0.snap/0');
    expect(readdirSync(local('0/12/disk.0.snap')).sort()).toEqual(['0', 'disk.0.snap']);
    expect(await storedBackingNames(local('0/12/disk.0'))).toEqual(['disk.0.snap/../../../1/q3', undefined]);
  });

  it.each([true, false])('standalone (sparse=%s): disk.0.snap/0 is a full qcow2 copy', async (sparse) => {
    const vm = sparse ? '13' : '14';
    const img = await image(`s-${vm}`, 'qcow2');
    await cloneOverlay(agent, req(vm, `s-${vm}`, { standalone: true, sparse }), call);
    const disk = local(`0/${vm}/disk.0`);
    expect(readlinkSync(disk)).toBe('disk.0.snap/0');
    expect(readlinkSync(local(`0/${vm}/disk.0.snap/disk.0.snap`))).toBe('.');
    expect(await storedBackingNames(disk)).toEqual([undefined]);
    expect(await patternMismatches(disk, 'qcow2', [{ offset: 0, length: DATA, byte: IMAGE_BYTE }])).toEqual(
      [],
    );
    const [layer] = await chainInfo(disk);
    const actual = Number(layer?.['actual-size']);
    if (sparse) expect(actual).toBeLessThan(4 * MIB);
    else expect(actual).toBeGreaterThanOrEqual(16 * MIB);
    await writePattern(disk, 'qcow2', GUEST_BYTE, 0, DATA);
    expect(await patternMismatches(img, 'qcow2', [{ offset: 0, length: DATA, byte: IMAGE_BYTE }])).toEqual(
      [],
    );
    // A repeat builds the same layout again.
    await cloneOverlay(agent, req(vm, `s-${vm}`, { standalone: true, sparse }), call);
    expect(readlinkSync(disk)).toBe('disk.0.snap/0');
    expect(await storedBackingNames(disk)).toEqual([undefined]);
    expect(hidden(local(`0/${vm}`))).toEqual([]);
  });

  it('raw: disk.0 is a plain hole-keeping copy; a repeat copies again', async () => {
    const img = await image('r1', 'raw');
    for (let i = 0; i < 2; i++)
      expect(await cloneOverlay(agent, req('15', 'r1'), call)).toEqual({
        format: ImageFormat.IMAGE_FORMAT_RAW,
      });
    const disk = local('0/15/disk.0');
    const st = lstatSync(disk);
    expect(st.isFile()).toBe(true);
    expect(st.size).toBe(16 * MIB);
    expect(st.blocks * 512).toBeLessThan(4 * MIB);
    expect(await patternMismatches(disk, 'raw', [{ offset: 0, length: DATA, byte: IMAGE_BYTE }])).toEqual([]);
    await writePattern(disk, 'raw', GUEST_BYTE, 0, DATA);
    expect(await patternMismatches(img, 'raw', [{ offset: 0, length: DATA, byte: IMAGE_BYTE }])).toEqual([]);
    expect(hidden(local('0/15'))).toEqual([]);
  });

  it('a missing source is NOT_FOUND and creates nothing', async () => {
    const err = await failure(cloneOverlay(agent, req('16', 'nope'), call));
    expect(err.reason).toBe('NOT_FOUND');
    expect(err.message).toContain(`host01:${ds('1/nope')}`);
    expect(readdirSync(local('0'))).not.toContain('16');
  });

  it('a source outside the roots is refused, directly or through a symlink', async () => {
    const direct = await failure(cloneOverlay(agent, { ...req('17', 'x'), source: '/etc/hostname' }, call));
    expect(direct.reason).toBe('PATH_OUTSIDE_ROOTS');
    expect(direct.message).toContain('host01:/etc/hostname');
    symlinkSync('/etc/hostname', local('1/evil'));
    expect((await failure(cloneOverlay(agent, req('17', 'evil'), call))).reason).toBe('PATH_OUTSIDE_ROOTS');
    // A backing file named inside an image is checked too.
    await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/hostname', local('1/planted'));
    expect((await failure(cloneOverlay(agent, req('17', 'planted'), call))).reason).toBe(
      'PATH_OUTSIDE_ROOTS',
    );
    expect(readdirSync(local('0'))).not.toContain('17');
  });

  it('refuses to replace the layers its own source is read through', async () => {
    await image('q4', 'qcow2');
    await cloneOverlay(agent, req('19', 'q4'), call);
    const err = await failure(
      cloneOverlay(agent, { ...req('19', 'q4'), source: ds('0/19/disk.0.snap/0') }, call),
    );
    expect(err.reason).toBe('BAD_LAYOUT');
    expect(await storedBackingNames(local('0/19/disk.0'))).toEqual(['disk.0.snap/../../../1/q4', undefined]);
  });

  it('names the missing field', async () => {
    const err = await failure(cloneOverlay(agent, { ...req('18', 'x'), diskPath: '' }, call));
    expect(err.reason).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('disk_path');
  });
});
