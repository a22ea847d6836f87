import {
  chmodSync,
  existsSync,
  mkdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import {
  type TestDomain,
  destroyIfRunning,
  domainXml,
  ensureLibvirt,
  startDomain,
} from '../../../test/support/libvirt.js';
import type { Progress } from '../jobs/job-registry.js';
import { copyDiskLive } from '../rpc/copy-disk-live.js';
import { snapshotCreate } from '../rpc/snapshot-create.js';
import { snapshotDelete } from '../rpc/snapshot-delete.js';
import { ds, makeTempDir } from '../../../test/support/agent/agent-fixture.js';
import {
  MIB,
  checkClean,
  localAgent,
  qemuImg,
  storedBackingNames,
  writePattern,
} from '../../../test/support/agent/disk-testing.js';
import { DEFAULT_LIBVIRT_URI } from '../libvirt/virsh.js';
import { imagesIdentical } from '../../../test/support/files.js';
import { failure } from '../../../test/support/agent/qcow2-test-fixture.js';
import { wireFormat } from '../../../test/support/wire-enums.js';
import { BackingStyle, FreezeMode, ImageFormat } from '../../../proto/gen/onestorage/agent/v1/agent.js';

// Live snapshots, live snapshot deletion and live cpds on a real running TCG domain. Content is
// checked byte for byte: every write the guest makes is also applied to an expected raw image, and
// each point is compared with `qemu-img compare` against what the disk (or snapshot) reads.

const SIZE = 64 * MIB;
const DOMAIN = 'one-ls1';
const base = await makeTempDir('live-snapshots-');
// QEMU runs as libvirt-qemu: it must be able to walk down to the disks.
chmodSync(base, 0o755);
const root = join(base, 'datastores');
const { agent, call } = localAgent(root, 2_000);
const vmDir = join(root, '0', '42');
const disk0 = join(vmDir, 'disk.0');
const snap0 = join(vmDir, 'disk.0.snap');
const virshArgs = (...a: string[]): Promise<{ stdout: string }> =>
  runTool('virsh', ['-c', DEFAULT_LIBVIRT_URI, '-q', ...a]);

/** Expected content of each point, as raw images built with the same writes. */
const expected = {
  now: join(base, 'expected-now.raw'),
  snap: (id: number) => join(base, `expected-snap-${id}.raw`),
};
let dom: TestDomain;

async function guestWrite(byte: number, offset: number, length: number): Promise<void> {
  await dom.write('vda', byte, offset, length);
  await writePattern(expected.now, 'raw', byte, offset, length);
}

function snapRequest(id: number, format: 'qcow2' | 'raw', diskN = 0, target = 'vda') {
  return {
    diskPath: ds(`0/42/disk.${diskN}`),
    snapId: id,
    format: wireFormat(format),
    snapDir: '',
    backingStyle: BackingStyle.BACKING_STYLE_RELATIVE,
    live: { domain: DOMAIN, target, freeze: FreezeMode.FREEZE_MODE_AGENT },
  };
}

async function takeSnapshot(id: number): Promise<void> {
  const r = await snapshotCreate(agent, snapRequest(id, 'qcow2'), call);
  expect(r.created).toBe(true);
  await runTool('cp', ['--sparse=always', expected.now, expected.snap(id)]);
}

/** Deletes snapshot `id` (it must exist); answers the progress the call reported. */
async function deleteSnapshot(id: number): Promise<Progress[]> {
  const seen: Progress[] = [];
  const r = await snapshotDelete(
    agent,
    { ...snapRequest(id, 'qcow2'), active: false },
    { ...call, progress: (p) => seen.push({ ...p }) },
  );
  expect(r.existed).toBe(true);
  return seen;
}

beforeAll(async () => {
  await ensureLibvirt();
  await destroyIfRunning(DOMAIN);
  mkdirSync(snap0, { recursive: true });
  await qemuImg('create', '-q', '-f', 'qcow2', join(snap0, '0'), String(SIZE));
  symlinkSync('.', join(snap0, 'disk.0.snap'));
  symlinkSync('disk.0.snap/0', disk0);
  await qemuImg('create', '-q', '-f', 'raw', join(vmDir, 'disk.1'), String(16 * MIB));
  await qemuImg('create', '-q', '-f', 'raw', expected.now, String(SIZE));
  dom = await startDomain(
    DOMAIN,
    [
      { target: 'vda', path: disk0, format: 'qcow2' },
      { target: 'vdb', path: join(vmDir, 'disk.1'), format: 'raw' },
    ],
    base,
  );
}, 120_000);

afterAll(async () => {
  await dom?.destroy();
  rmSync(base, { recursive: true, force: true });
});

describe('snap_create_live and live snap_delete (qcow2)', () => {
  it('takes snapshots of the running disk: the domain moves onto each new layer, every point keeps its content', async () => {
    await guestWrite(0x11, 0, MIB);
    await takeSnapshot(0);
    expect(readlinkSync(disk0)).toBe('disk.0.snap/1');
    expect(await dom.source('vda')).toBe(join(snap0, '1'));
    await guestWrite(0x22, 0, MIB);
    await guestWrite(0x23, 5 * MIB, 2 * MIB);
    await takeSnapshot(1);
    expect(await dom.source('vda')).toBe(join(snap0, '2'));
    await guestWrite(0x33, MIB, MIB);
    // Every point byte for byte: the two snapshots and the running disk.
    expect(await imagesIdentical(join(snap0, '0'), 'qcow2', expected.snap(0), 'raw')).toBe(true);
    expect(await imagesIdentical(join(snap0, '1'), 'qcow2', expected.snap(1), 'raw')).toBe(true);
    expect(await imagesIdentical(disk0, 'qcow2', expected.now, 'raw')).toBe(true);
    // The other disk was not snapshotted.
    expect(await dom.source('vdb')).toBe(join(vmDir, 'disk.1'));
    expect(await dom.state()).toBe('running');
    await checkClean(disk0);
  });

  it('a repeat of the same snap_create_live changes nothing', async () => {
    const r = await snapshotCreate(agent, snapRequest(1, 'qcow2'), call);
    expect(r.created).toBe(false);
    expect(await dom.source('vda')).toBe(join(snap0, '2'));
  });

  it('deletes the snapshot right below the active layer with blockpull: the disk reads the same', async () => {
    await deleteSnapshot(1);
    expect(existsSync(join(snap0, '1'))).toBe(false);
    expect(await dom.source('vda')).toBe(join(snap0, '2'));
    // The merged layer now backs on file 0, by the short relative name the agent writes
    // (libvirt's --keep-relative wrote disk.0.snap/disk.0.snap/0), valid from the VM directory
    // and, through the self link, from the snap dir.
    const info = JSON.parse(await qemuImg('info', '-U', '--output=json', join(snap0, '2'))) as {
      'backing-filename': string;
      'full-backing-filename': string;
    };
    expect(info['backing-filename']).toBe('disk.0.snap/0');
    expect(await storedBackingNames(disk0)).toEqual(['disk.0.snap/0', undefined]);
    expect(realpathSync(info['full-backing-filename'])).toBe(realpathSync(join(snap0, '0')));
    await dom.flush('vda');
    expect(await imagesIdentical(disk0, 'qcow2', expected.now, 'raw')).toBe(true);
    expect(await imagesIdentical(join(snap0, '0'), 'qcow2', expected.snap(0), 'raw')).toBe(true);
    expect(await dom.state()).toBe('running');
  });

  it('deletes a deeper snapshot: its data is pulled up, its child is rebased below it and keeps its content', async () => {
    await takeSnapshot(2); // file 2 holds snapshot 2, active 3
    await guestWrite(0x44, 2 * MIB, MIB);
    await takeSnapshot(3); // file 3 holds snapshot 3, active 4
    await guestWrite(0x55, 3 * MIB, MIB);
    const seen = await deleteSnapshot(2);
    // The pull reports virsh's percentages of the disk's virtual size, up to all of it.
    expect(seen[0]).toEqual({ done: 0, total: SIZE, phase: 'block-pull' });
    expect(seen.at(-1)).toEqual({ done: SIZE, total: SIZE });
    await dom.flush('vda');
    expect(existsSync(join(snap0, '2'))).toBe(false);
    expect(existsSync(join(snap0, '3.current'))).toBe(false);
    // Snapshot 3's file now backs on file 0 and still reads as snapshot 3 did.
    const info = JSON.parse(await qemuImg('info', '-U', '--output=json', join(snap0, '3'))) as {
      'full-backing-filename': string;
    };
    expect(realpathSync(info['full-backing-filename'])).toBe(realpathSync(join(snap0, '0')));
    // Every layer of the running chain names its backing file in the short form.
    expect(await storedBackingNames(disk0)).toEqual(['disk.0.snap/0', undefined]);
    expect(await storedBackingNames(join(snap0, '3'))).toEqual(['disk.0.snap/0', undefined]);
    await dom.read('vda', 0x44, 2 * MIB, MIB);
    await dom.read('vda', 0x55, 3 * MIB, MIB);
    expect(await imagesIdentical(join(snap0, '3'), 'qcow2', expected.snap(3), 'raw')).toBe(true);
    expect(await imagesIdentical(join(snap0, '0'), 'qcow2', expected.snap(0), 'raw')).toBe(true);
    expect(await imagesIdentical(disk0, 'qcow2', expected.now, 'raw')).toBe(true);
    await checkClean(disk0);
    expect(await dom.state()).toBe('running');
  });

  it('then deletes snapshot 3; a repeat finds it gone', async () => {
    await deleteSnapshot(3);
    await dom.flush('vda');
    expect(existsSync(join(snap0, '3'))).toBe(false);
    expect(await imagesIdentical(disk0, 'qcow2', expected.now, 'raw')).toBe(true);
    expect(await imagesIdentical(join(snap0, '0'), 'qcow2', expected.snap(0), 'raw')).toBe(true);
    const again = await snapshotDelete(agent, { ...snapRequest(3, 'qcow2'), active: false }, call);
    expect(again.existed).toBe(false);
  });

  it('follows a .current pointer OpenNebula left: the file it names is the snapshot that goes', async () => {
    await takeSnapshot(4); // file 4 holds snapshot 4, active 5
    await guestWrite(0x56, 6 * MIB, MIB);
    // As OpenNebula's live delete leaves it: snapshot 7's data lives in file 4.
    writeFileSync(join(snap0, '7.current'), `${join(snap0, '4')}\n`);
    await deleteSnapshot(7);
    await dom.flush('vda');
    expect(existsSync(join(snap0, '4'))).toBe(false);
    expect(existsSync(join(snap0, '7.current'))).toBe(false);
    expect(await imagesIdentical(disk0, 'qcow2', expected.now, 'raw')).toBe(true);
  });

  it('refuses a snapshot while a block job runs on the disk, and changes nothing', async () => {
    const mirror = join(vmDir, 'mirror.qcow2');
    await virshArgs('blockcopy', DOMAIN, 'vda', '--dest', mirror, '--format', 'qcow2', '--transient-job');
    try {
      const before = await dom.source('vda');
      const err = await snapshotCreate(agent, snapRequest(5, 'qcow2'), call).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).reason).toBe('BUSY');
      expect((err as StorageError).message).toMatch(/block job is already running on vda of one-ls1/);
      expect(await dom.source('vda')).toBe(before);
      expect(existsSync(join(snap0, '6'))).toBe(false);
    } finally {
      await virshArgs('blockjob', DOMAIN, 'vda', '--abort');
      rmSync(mirror, { force: true });
    }
  });

  it('refuses a second snapshot of the same disk while the first runs', async () => {
    const slowAgent = localAgent(root, 20);
    const results = await Promise.allSettled([
      snapshotCreate(slowAgent.agent, snapRequest(5, 'qcow2'), slowAgent.call),
      snapshotCreate(slowAgent.agent, snapRequest(5, 'qcow2'), slowAgent.call),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const err = lost[0]?.reason as StorageError;
    expect(err.reason).toBe('LOCKED');
    expect(err.message.split('\n')).toHaveLength(1);
    expect(await dom.source('vda')).toBe(join(snap0, '6'));
    await runTool('cp', ['--sparse=always', expected.now, expected.snap(5)]);
    expect(await imagesIdentical(join(snap0, '5'), 'qcow2', expected.snap(5), 'raw')).toBe(true);
  });
});

describe('FS_FREEZE=SUSPEND', () => {
  it('suspends and resumes a running guest; a guest that was paused stays paused', async () => {
    const suspendRequest = (id: number) => ({
      ...snapRequest(id, 'qcow2'),
      live: { domain: DOMAIN, target: 'vda', freeze: FreezeMode.FREEZE_MODE_SUSPEND },
    });
    expect((await snapshotCreate(agent, suspendRequest(6), call)).created).toBe(true);
    expect(await dom.state()).toBe('running');
    await virshArgs('suspend', DOMAIN);
    try {
      expect((await snapshotCreate(agent, suspendRequest(7), call)).created).toBe(true);
      expect(await dom.state()).toBe('paused');
    } finally {
      await virshArgs('resume', DOMAIN);
    }
    expect(await dom.source('vda')).toBe(join(snap0, '8'));
  });
});

describe('snap_create_live of a raw disk', () => {
  it('copies the running disk with a block copy', async () => {
    await dom.write('vdb', 0x66, 0, 2 * MIB);
    const r = await snapshotCreate(agent, snapRequest(0, 'raw', 1, 'vdb'), call);
    expect(r.created).toBe(true);
    const copy = join(vmDir, 'disk.1.snap', '0');
    await dom.flush('vdb');
    const cmp = await runTool('qemu-img', [
      'compare',
      '-U',
      '-f',
      'raw',
      '-F',
      'raw',
      join(vmDir, 'disk.1'),
      copy,
    ]);
    expect(cmp.stdout).toMatch(/Images are identical/);
    expect(await dom.source('vdb')).toBe(join(vmDir, 'disk.1'));
  });
});

describe('cpds of a running disk (CopyDiskLive)', () => {
  it('writes a standalone copy of the whole chain while the domain keeps running', async () => {
    const dest = join(vmDir, 'saved.qcow2');
    const seen: Progress[] = [];
    const r = await copyDiskLive(
      agent,
      {
        diskPath: ds('0/42/disk.0'),
        destination: ds('0/42/saved.qcow2'),
        format: ImageFormat.IMAGE_FORMAT_QCOW2,
        sourceFormat: ImageFormat.IMAGE_FORMAT_QCOW2,
        live: { domain: DOMAIN, target: 'vda', freeze: FreezeMode.FREEZE_MODE_NONE },
      },
      { ...call, progress: (p) => seen.push({ ...p }) },
    );
    expect(r.method).toBe('blockcopy');
    expect(seen[0]).toEqual({ done: 0, total: SIZE, phase: 'block-copy' });
    expect(seen.at(-1)).toEqual({ done: SIZE, total: SIZE });
    expect(seen.map((p) => p.done)).toEqual(seen.map((p) => p.done).sort((a, b) => a - b));
    const info = JSON.parse(await qemuImg('info', '-f', 'qcow2', '--output=json', dest)) as Record<
      string,
      unknown
    >;
    expect(info['backing-filename']).toBeUndefined();
    expect(await imagesIdentical(dest, 'qcow2', expected.now, 'raw')).toBe(true);
    expect(await dom.state()).toBe('running');
    expect(await dom.source('vda')).toBe(join(snap0, '8'));
  });

  it('refuses an existing destination and leaves it as it was', async () => {
    const err = await failure(
      copyDiskLive(
        agent,
        {
          diskPath: ds('0/42/disk.0'),
          destination: ds('0/42/saved.qcow2'),
          format: ImageFormat.IMAGE_FORMAT_QCOW2,
          sourceFormat: ImageFormat.IMAGE_FORMAT_QCOW2,
          live: { domain: DOMAIN, target: 'vda', freeze: FreezeMode.FREEZE_MODE_NONE },
        },
        call,
      ),
    );
    expect(err.reason).toBe('ALREADY_EXISTS');
    expect(await imagesIdentical(join(vmDir, 'saved.qcow2'), 'qcow2', expected.now, 'raw')).toBe(true);
  });
});

describe('faults', () => {
  it('an unknown domain is DOMAIN_NOT_FOUND, a disk the domain does not run on is BAD_LAYOUT', async () => {
    const unknown = await failure(
      snapshotCreate(
        agent,
        {
          ...snapRequest(8, 'qcow2'),
          live: { domain: 'one-ls404', target: 'vda', freeze: FreezeMode.FREEZE_MODE_NONE },
        },
        call,
      ),
    );
    expect(unknown.reason).toBe('DOMAIN_NOT_FOUND');
    expect(unknown.message).toMatch(
      /^snapshot create live host01:\/var\/lib\/one\/datastores\/0\/42\/disk.0 \(snapshot 8\)/,
    );
    const wrong = await failure(
      snapshotCreate(
        agent,
        {
          ...snapRequest(8, 'qcow2'),
          live: { domain: DOMAIN, target: 'vdb', freeze: FreezeMode.FREEZE_MODE_NONE },
        },
        call,
      ),
    );
    expect(wrong.reason).toBe('BAD_LAYOUT');
    expect(wrong.message).toMatch(/vdb of one-ls1 runs on/);
    expect(existsSync(join(snap0, '9'))).toBe(false);
  });

  it('a domain that is defined but shut off is DOMAIN_NOT_RUNNING', async () => {
    const name = 'one-ls2';
    const xml = join(base, `${name}.xml`);
    writeFileSync(xml, domainXml(name, [{ target: 'vda', path: disk0, format: 'qcow2' }]));
    await virshArgs('define', xml);
    try {
      const err = await failure(
        snapshotCreate(
          agent,
          {
            ...snapRequest(8, 'qcow2'),
            live: { domain: name, target: 'vda', freeze: FreezeMode.FREEZE_MODE_NONE },
          },
          call,
        ),
      );
      expect(err.reason).toBe('DOMAIN_NOT_RUNNING');
      expect(err.message).toMatch(/domain one-ls2 is not running \(shut off\)/);
    } finally {
      await virshArgs('undefine', name);
    }
  });
});
