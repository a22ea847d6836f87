import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { type CreateImageRequest, ImageFormat } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { ds, makeTempDir } from '../../../test/support/agent/agent-fixture.js';
import {
  MIB,
  checkClean,
  localAgent,
  patternMismatches,
  qemuImg,
  writePattern,
} from '../../../test/support/agent/disk-testing.js';
import { createImage } from './create-image.js';
import { wireFormat } from '../../../test/support/wire-enums.js';

const base = await makeTempDir('create-image-');
const root = join(base, 'datastores');
mkdirSync(join(root, '0/42'), { recursive: true });
const { agent, call } = localAgent(root);
const local = (rel: string): string => join(root, rel);
afterAll(() => rmSync(base, { recursive: true, force: true }));

const SIZE_MB = 32;
function req(name: string, extra: Partial<CreateImageRequest> = {}): CreateImageRequest {
  return {
    path: ds(`0/42/${name}`),
    sizeMb: SIZE_MB,
    format: ImageFormat.IMAGE_FORMAT_RAW,
    filesystem: '',
    filesystemOptions: '',
    sparse: true,
    swap: false,
    ...extra,
  };
}

/** blkid's low-level probe of a raw image: TYPE, LABEL... */
async function probe(file: string): Promise<string> {
  return (await runTool('blkid', ['-p', '-o', 'export', file])).stdout;
}

async function failure(p: Promise<unknown>): Promise<StorageError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

function leftovers(): string[] {
  return readdirSync(local('0/42')).filter((n) => n.startsWith('.'));
}

describe('CreateImage (mkimage / mkswap)', () => {
  it.each([
    ['raw', true],
    ['qcow2', true],
    ['raw', false],
    ['qcow2', false],
  ] as const)('creates an empty %s image (sparse=%s)', async (format, sparse) => {
    const name = `empty-${format}-${sparse}`;
    const res = await createImage(agent, req(name, { format: wireFormat(format), sparse }), call);
    expect(res.virtualSize).toBe(SIZE_MB * MIB);
    const info = JSON.parse(await qemuImg('info', '--output=json', local(`0/42/${name}`))) as Record<
      string,
      unknown
    >;
    expect(info['format']).toBe(format);
    const allocated = statSync(local(`0/42/${name}`)).blocks * 512;
    if (sparse) expect(allocated).toBeLessThan(MIB);
    else expect(allocated).toBeGreaterThanOrEqual(SIZE_MB * MIB);
  });

  it('formats ext4 with the given options, as raw and as qcow2', async () => {
    await createImage(
      agent,
      req('fs.raw', { filesystem: 'ext4', filesystemOptions: ' -L  data -m 0 ' }),
      call,
    );
    const raw = await probe(local('0/42/fs.raw'));
    expect(raw).toMatch(/^TYPE=ext4$/m);
    expect(raw).toMatch(/^LABEL=data$/m);
    await createImage(
      agent,
      req('fs.qcow2', { format: ImageFormat.IMAGE_FORMAT_QCOW2, filesystem: 'ext4', sparse: false }),
      call,
    );
    await checkClean(local('0/42/fs.qcow2'));
    await qemuImg('convert', '-f', 'qcow2', '-O', 'raw', local('0/42/fs.qcow2'), local('0/42/fs.check'));
    expect(await probe(local('0/42/fs.check'))).toMatch(/^TYPE=ext4$/m);
    expect(statSync(local('0/42/fs.raw')).blocks * 512).toBeLessThan(SIZE_MB * MIB);
  });

  it('makes swap labelled "swap", preallocated when sparse=false', async () => {
    await createImage(agent, req('swap', { swap: true, sparse: false }), call);
    const out = await probe(local('0/42/swap'));
    expect(out).toMatch(/^TYPE=swap$/m);
    expect(out).toMatch(/^LABEL=swap$/m);
    expect(statSync(local('0/42/swap')).blocks * 512).toBeGreaterThanOrEqual(SIZE_MB * MIB);
  });

  it('a repeat recreates the same empty image', async () => {
    await createImage(agent, req('again', { format: ImageFormat.IMAGE_FORMAT_QCOW2 }), call);
    await writePattern(local('0/42/again'), 'qcow2', 0x42, 0, MIB);
    await createImage(agent, req('again', { format: ImageFormat.IMAGE_FORMAT_QCOW2 }), call);
    expect(
      await patternMismatches(local('0/42/again'), 'qcow2', [{ offset: 0, length: MIB, byte: 0 }]),
    ).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  it('creates missing parent directories', async () => {
    await createImage(agent, req('disk.1', { path: ds('0/43/disk.1') }), call);
    expect(statSync(local('0/43/disk.1')).size).toBe(SIZE_MB * MIB);
  });

  it.each([
    [
      { format: ImageFormat.UNRECOGNIZED },
      'create image on host01: format must be one of raw, qcow2 (got -1)',
    ],
    [
      { format: ImageFormat.IMAGE_FORMAT_UNSPECIFIED },
      'create image on host01: format must be one of raw, qcow2 (got UNSPECIFIED)',
    ],
    [
      { swap: true, format: ImageFormat.IMAGE_FORMAT_QCOW2 },
      'create image on host01: format must be raw with swap (got qcow2)',
    ],
    [
      { filesystem: 'btrfs' },
      'create image on host01: filesystem must be one of ext2, ext3, ext4, xfs, vfat (got "btrfs")',
    ],
    [
      { swap: true, filesystem: 'ext4' },
      'create image on host01: filesystem must be empty with swap (got "ext4")',
    ],
    [{ filesystem: 'ext4', filesystemOptions: '-d /etc' }, /filesystem_options: "\/etc" may only hold/],
    [{ filesystem: 'ext4', filesystemOptions: '-E;reboot' }, /filesystem_options: "-E;reboot"/],
    [{ filesystemOptions: '-m 0' }, /filesystem_options need a filesystem/],
    [{ sizeMb: 0 }, /size_mb must be a positive integer/],
  ] as const)('refuses %o', async (extra, message) => {
    const err = await failure(createImage(agent, req('bad', extra), call));
    expect(err.reason).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(message);
  });

  it('a failing mkfs leaves nothing behind', async () => {
    // An invalid block size: mke2fs refuses it after the raw image was created.
    const err = await failure(
      createImage(agent, req('badfs', { filesystem: 'ext4', filesystemOptions: '-b 3' }), call),
    );
    expect(err.reason).toBe('TOOL_FAILED');
    expect(err.message).toMatch(
      /^create image host01:\/var\/lib\/one\/datastores\/0\/42\/badfs: mkfs failed/,
    );
    expect(leftovers()).toEqual([]);
    expect(readdirSync(local('0/42'))).not.toContain('badfs');
  });

  it('refuses a path outside the roots', async () => {
    expect((await failure(createImage(agent, req('x', { path: '/tmp/x' }), call))).reason).toBe(
      'PATH_OUTSIDE_ROOTS',
    );
  });
});
