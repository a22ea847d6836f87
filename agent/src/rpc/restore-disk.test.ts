import {
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { RestoreLayout, type RestoreDiskRequest } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { ds, makeTempDir } from '../../../test/support/agent/agent-fixture.js';
import {
  KIB,
  checkClean,
  localAgent,
  patternMismatches,
  qemuImg,
  writePattern,
} from '../../../test/support/agent/disk-testing.js';
import { pathAppears } from '../../../test/support/files.js';
import { wireFormat } from '../../../test/support/wire-enums.js';
import { restoreDisk } from './restore-disk.js';

// RestoreDisk (docs/backups.md#tm-restore) with real qemu-img: each layout built from what the TM
// drivers leave, bitmaps dropped, and failures that leave the old disk whole and no staging file.

const base = await makeTempDir('restore-disk-');
const root = join(base, 'datastores');
mkdirSync(join(root, '0'), { recursive: true });
mkdirSync(join(root, '1'), { recursive: true });
const { agent, call } = localAgent(root);
const local = (rel: string): string => join(root, rel);
afterAll(() => rmSync(base, { recursive: true, force: true }));

const SIZE = '8M';
const DATA = 256 * KIB;
const OLD = 0x11;
const NEW = 0x5e;

/** A received restore point: a standalone qcow2 holding NEW, with two CBT bitmaps. */
async function staging(rel: string): Promise<string> {
  const file = local(rel);
  await qemuImg('create', '-q', '-f', 'qcow2', file, SIZE);
  await writePattern(file, 'qcow2', NEW, 0, DATA);
  await qemuImg('bitmap', '--add', '-f', 'qcow2', file, 'one-7-0');
  await qemuImg('bitmap', '--add', '-f', 'qcow2', file, 'one-7-1');
  return file;
}

async function image(rel: string, format: 'raw' | 'qcow2', byte = OLD): Promise<string> {
  const file = local(rel);
  await qemuImg('create', '-q', '-f', format, file, SIZE);
  await writePattern(file, format, byte, 0, DATA);
  return file;
}

async function bitmapsOf(file: string): Promise<unknown[]> {
  const info = JSON.parse(await qemuImg('info', '-f', 'qcow2', '--output=json', '-U', file)) as {
    'format-specific'?: { data?: { bitmaps?: unknown[] } };
  };
  return info['format-specific']?.data?.bitmaps ?? [];
}

async function holds(file: string, format: string, byte: number): Promise<void> {
  expect(await patternMismatches(file, format, [{ offset: 0, length: DATA, byte }])).toEqual([]);
}

const req = (
  vm: string,
  layout: RestoreLayout,
  format: 'raw' | 'qcow2',
  source = '',
): RestoreDiskRequest => ({
  staging:
    source !== '' && layout === RestoreLayout.RESTORE_LAYOUT_IMAGE
      ? `${source}.backup`
      : ds(`0/${vm}/disk.0.backup`),
  diskPath: ds(`0/${vm}/disk.0`),
  layout,
  format: wireFormat(format),
  source,
});

/** No staging file and no temporary left in `dir`. */
function noLeftovers(dir: string): void {
  expect(
    readdirSync(local(dir)).filter(
      (n) => n.includes('.backup') || n.includes('.tmp-') || n.includes('.old-'),
    ),
  ).toEqual([]);
}

async function failure(p: Promise<unknown>): Promise<StorageError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

describe('RestoreDisk', () => {
  it('PLAIN (local mode): a snapshot chain becomes one plain qcow2 file, bitmaps dropped, snapshots gone', async () => {
    mkdirSync(local('0/10/disk.0.snap'), { recursive: true });
    await image('0/10/disk.0.snap/0', 'qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-b', '0', '-F', 'qcow2', local('0/10/disk.0.snap/1'));
    symlinkSync('disk.0.snap/1', local('0/10/disk.0'));
    await staging('0/10/disk.0.backup');
    const r = await restoreDisk(agent, req('10', RestoreLayout.RESTORE_LAYOUT_PLAIN, 'qcow2'), call);
    expect(r.bitmapsRemoved.sort()).toEqual(['one-7-0', 'one-7-1']);
    expect(r.virtualSize).toBe(8 * 1024 * KIB);
    expect(lstatSync(local('0/10/disk.0')).isFile()).toBe(true);
    expect(existsSync(local('0/10/disk.0.snap'))).toBe(false);
    expect(await bitmapsOf(local('0/10/disk.0'))).toEqual([]);
    await holds(local('0/10/disk.0'), 'qcow2', NEW);
    await checkClean(local('0/10/disk.0'));
    noLeftovers('0/10');
  });

  it('PLAIN of a raw disk: the restore point is converted to raw', async () => {
    mkdirSync(local('0/11'), { recursive: true });
    await image('0/11/disk.0', 'raw');
    await staging('0/11/disk.0.backup');
    await restoreDisk(agent, req('11', RestoreLayout.RESTORE_LAYOUT_PLAIN, 'raw'), call);
    await holds(local('0/11/disk.0'), 'raw', NEW);
    expect(lstatSync(local('0/11/disk.0')).size).toBe(8 * 1024 * KIB);
    noLeftovers('0/11');
  });

  it('SNAP_DIR (shared mode): disk.0 -> disk.0.snap/0, a standalone file, the self link; the old overlays gone', async () => {
    await image('1/img20', 'qcow2');
    mkdirSync(local('0/20/disk.0.snap'), { recursive: true });
    await qemuImg(
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      '../../../1/img20',
      '-F',
      'qcow2',
      local('0/20/disk.0.snap/0'),
    );
    symlinkSync('.', local('0/20/disk.0.snap/disk.0.snap'));
    await qemuImg(
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      'disk.0.snap/0',
      '-F',
      'qcow2',
      local('0/20/disk.0.snap/1'),
    );
    symlinkSync('disk.0.snap/1', local('0/20/disk.0'));
    await staging('0/20/disk.0.backup');
    await restoreDisk(agent, req('20', RestoreLayout.RESTORE_LAYOUT_SNAP_DIR, 'qcow2'), call);
    expect(readlinkSync(local('0/20/disk.0'))).toBe('disk.0.snap/0');
    expect(readdirSync(local('0/20/disk.0.snap')).sort()).toEqual(['0', 'disk.0.snap']);
    expect(readlinkSync(local('0/20/disk.0.snap/disk.0.snap'))).toBe('.');
    const info = JSON.parse(
      await qemuImg('info', '-f', 'qcow2', '--output=json', local('0/20/disk.0')),
    ) as Record<string, unknown>;
    expect(info['backing-filename']).toBeUndefined();
    expect(await bitmapsOf(local('0/20/disk.0'))).toEqual([]);
    await holds(local('0/20/disk.0'), 'qcow2', NEW);
    await holds(local('1/img20'), 'qcow2', OLD); // the image a non-persistent disk came from is untouched
    noLeftovers('0/20');
  });

  it('IMAGE (shared mode, persistent qcow2): SOURCE replaced, SOURCE.snap/0 -> SOURCE rebuilt, disk.0 linked to it', async () => {
    await image('1/p30', 'qcow2');
    mkdirSync(local('1/p30.snap'), { recursive: true });
    symlinkSync('../p30', local('1/p30.snap/0'));
    symlinkSync('.', local('1/p30.snap/p30.snap'));
    await qemuImg('create', '-q', '-f', 'qcow2', '-b', 'p30.snap/0', '-F', 'qcow2', local('1/p30.snap/1'));
    writeFileSync(local('1/p30.md5sum'), 'stale\n');
    mkdirSync(local('0/30'), { recursive: true });
    symlinkSync('../../1/p30.snap/1', local('0/30/disk.0'));
    await staging('1/p30.backup');
    await restoreDisk(agent, req('30', RestoreLayout.RESTORE_LAYOUT_IMAGE, 'qcow2', ds('1/p30')), call);
    expect(lstatSync(local('1/p30')).isFile()).toBe(true);
    expect(readdirSync(local('1/p30.snap')).sort()).toEqual(['0', 'p30.snap']);
    expect(readlinkSync(local('1/p30.snap/0'))).toBe('../p30');
    expect(readlinkSync(local('0/30/disk.0'))).toBe('../../1/p30.snap/0');
    expect(existsSync(local('1/p30.md5sum'))).toBe(false);
    expect(await bitmapsOf(local('1/p30'))).toEqual([]);
    await holds(local('0/30/disk.0'), 'qcow2', NEW);
    noLeftovers('1');
    noLeftovers('0/30');
  });

  it('IMAGE of a persistent raw image: SOURCE replaced by the raw conversion, disk.0 -> SOURCE', async () => {
    await image('1/r31', 'raw');
    mkdirSync(local('0/31'), { recursive: true });
    symlinkSync('../../1/r31', local('0/31/disk.0'));
    await staging('1/r31.backup');
    await restoreDisk(agent, req('31', RestoreLayout.RESTORE_LAYOUT_IMAGE, 'raw', ds('1/r31')), call);
    expect(readlinkSync(local('0/31/disk.0'))).toBe('../../1/r31');
    await holds(local('1/r31'), 'raw', NEW);
    noLeftovers('1');
  });

  it('a received file that is no qcow2, or not standalone, is refused: the old disk intact, no staging left', async () => {
    mkdirSync(local('0/40'), { recursive: true });
    await image('0/40/disk.0', 'qcow2');
    writeFileSync(local('0/40/disk.0.backup'), Buffer.alloc(64 * KIB, 0x41));
    const e1 = await failure(
      restoreDisk(agent, req('40', RestoreLayout.RESTORE_LAYOUT_PLAIN, 'qcow2'), call),
    );
    expect(e1.reason).toBe('BAD_IMAGE');
    expect(e1.message).toMatch(/disk\.0\.backup is not a qcow2 image/);
    await qemuImg('create', '-q', '-f', 'qcow2', '-b', 'disk.0', '-F', 'qcow2', local('0/40/disk.0.backup'));
    const e2 = await failure(
      restoreDisk(agent, req('40', RestoreLayout.RESTORE_LAYOUT_PLAIN, 'qcow2'), call),
    );
    expect(e2.message).toMatch(/not standalone/);
    await holds(local('0/40/disk.0'), 'qcow2', OLD);
    noLeftovers('0/40');
    const e3 = await failure(
      restoreDisk(agent, req('40', RestoreLayout.RESTORE_LAYOUT_PLAIN, 'qcow2'), call),
    );
    expect(e3.reason).toBe('NOT_FOUND');
  });

  it('a conversion that fails half-way (a corrupt restore point) leaves the old disk and snapshots, no staging and no temporary', async () => {
    mkdirSync(local('0/41/disk.0.snap'), { recursive: true });
    await image('0/41/disk.0.snap/0', 'raw');
    symlinkSync('disk.0.snap/0', local('0/41/disk.0'));
    const file = await staging('0/41/disk.0.backup');
    // Make the first L1 entry name an unaligned L2 table: the header still reads, the data does not.
    const fd = openSync(file, 'r+');
    const header = Buffer.alloc(48);
    readSync(fd, header, 0, 48, 0);
    const entry = Buffer.alloc(8);
    entry.writeBigUInt64BE((1n << 63n) | 0x201n);
    writeSync(fd, entry, 0, 8, Number(header.readBigUInt64BE(40)));
    closeSync(fd);
    const err = await failure(restoreDisk(agent, req('41', RestoreLayout.RESTORE_LAYOUT_PLAIN, 'raw'), call));
    expect(err.message).toContain('restore host01:');
    expect(readlinkSync(local('0/41/disk.0'))).toBe('disk.0.snap/0');
    await holds(local('0/41/disk.0'), 'raw', OLD);
    noLeftovers('0/41');
  });

  it('a disk a running QEMU holds (its image lock) is BUSY: nothing replaced, the staging file removed', async () => {
    mkdirSync(local('0/43'), { recursive: true });
    await image('0/43/disk.0', 'qcow2');
    await staging('0/43/disk.0.backup');
    // qemu-nbd takes the same write lock a running VM's QEMU holds on its disk.
    const sock = local('0/43/nbd.sock');
    const nbd = spawn('qemu-nbd', ['-f', 'qcow2', '-k', sock, local('0/43/disk.0')], { stdio: 'ignore' });
    const exited = new Promise((resolve) => nbd.once('exit', resolve));
    try {
      await pathAppears(sock, AbortSignal.timeout(20_000));
      const err = await failure(
        restoreDisk(agent, req('43', RestoreLayout.RESTORE_LAYOUT_PLAIN, 'qcow2'), call),
      );
      expect(err.reason).toBe('BUSY');
      expect(err.message).toMatch(/in use .*powered off/);
    } finally {
      nbd.kill();
      await exited;
    }
    await holds(local('0/43/disk.0'), 'qcow2', OLD);
    expect(existsSync(local('0/43/disk.0.backup'))).toBe(false);
  });

  it('refuses a staging path that is the disk itself', async () => {
    const r = { ...req('42', RestoreLayout.RESTORE_LAYOUT_PLAIN, 'qcow2'), staging: ds('0/42/disk.0') };
    expect((await failure(restoreDisk(agent, r, call))).reason).toBe('INVALID_ARGUMENT');
  });
});
