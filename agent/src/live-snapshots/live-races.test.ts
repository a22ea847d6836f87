import { chmodSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import {
  type TestDomain,
  destroyIfRunning,
  ensureLibvirt,
  startDomain,
} from '../../../test/support/libvirt.js';
import { backupFinish } from '../rpc/backup-finish.js';
import { backupPrepare } from '../rpc/backup-prepare.js';
import { copyDiskLive } from '../rpc/copy-disk-live.js';
import { snapshotCreate } from '../rpc/snapshot-create.js';
import { snapshotDelete } from '../rpc/snapshot-delete.js';
import { ds, makeTempDir } from '../../../test/support/agent/agent-fixture.js';
import { MIB, localAgent } from '../../../test/support/agent/disk-testing.js';
import { LiveDisk, type Outcome, race, value } from '../../../test/support/agent/live-disks.js';
import { restoreMatches } from '../../../test/support/backup-chain.js';
import { imagesIdentical } from '../../../test/support/files.js';
import {
  BackingStyle,
  BackupMode,
  FreezeMode,
  ImageFormat,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { AgentContext, CallContext } from '../rpc/context.js';

// Two live actions at once, on one disk and on two disks of one domain (a real TCG domain): the
// second call always starts while the first holds its locks. With the agent's wait long enough,
// the second is queued and then works on what the first left (disk.N's new target, the domain's
// new chain); with a short wait it is refused LOCKED and changes nothing. Either way both calls
// end, disk.N leads to the file the domain runs on, every chain opens with short backing names,
// and every disk and snapshot reads what the guest wrote.

const SIZE = 32 * MIB;
const DOMAIN = 'one-lr1';
const base = await makeTempDir('live-races-');
chmodSync(base, 0o755);
const root = join(base, 'datastores');
const vmDir = join(root, '0', '43');
const queued = localAgent(root, 120_000);
const refusing = localAgent(root, 20);
const vda = new LiveDisk(vmDir, 0, 'vda', base);
const vdb = new LiveDisk(vmDir, 1, 'vdb', base);
let dom: TestDomain;
let byte = 0x10;
let copies = 0;

type Agent = { agent: AgentContext; call: CallContext };

function live(d: LiveDisk) {
  return { domain: DOMAIN, target: d.target, freeze: FreezeMode.FREEZE_MODE_NONE };
}

function snapRequest(d: LiveDisk, id: number) {
  return {
    diskPath: ds(`0/43/disk.${d.n}`),
    snapId: id,
    format: ImageFormat.IMAGE_FORMAT_QCOW2,
    snapDir: '',
    backingStyle: BackingStyle.BACKING_STYLE_RELATIVE,
    live: live(d),
  };
}

const create = (a: Agent, d: LiveDisk, id: number) => () =>
  snapshotCreate(a.agent, snapRequest(d, id), a.call);
const remove = (a: Agent, d: LiveDisk, id: number) => () =>
  snapshotDelete(a.agent, { ...snapRequest(d, id), active: false }, a.call);
const copy = (a: Agent, d: LiveDisk, name: string) => () =>
  copyDiskLive(
    a.agent,
    {
      diskPath: ds(`0/43/disk.${d.n}`),
      destination: ds(`0/43/${name}`),
      format: ImageFormat.IMAGE_FORMAT_QCOW2,
      sourceFormat: ImageFormat.IMAGE_FORMAT_QCOW2,
      live: live(d),
    },
    a.call,
  );

/** pre_backup_live of both disks (FULL): the domain runs on temporary overlays until finish. */
const prepare = (a: Agent) => () =>
  backupPrepare(
    a.agent,
    {
      vmDir: ds('0/43'),
      vmId: 43,
      domain: DOMAIN,
      live: true,
      mode: BackupMode.BACKUP_MODE_FULL,
      backupId: 0,
      parentId: -1,
      freeze: FreezeMode.FREEZE_MODE_NONE,
      vmXml: '<VM><ID>43</ID></VM>',
      disks: [vda, vdb].map((d) => ({
        diskId: d.n,
        target: d.target,
        format: ImageFormat.IMAGE_FORMAT_QCOW2,
      })),
    },
    a.call,
  );
const finish = (a: Agent) =>
  backupFinish(a.agent, { vmDir: ds('0/43'), domain: DOMAIN, live: true, failed: false }, a.call);

/** The backup of both disks holds what each disk read when it was taken. */
async function expectBackup(): Promise<void> {
  for (const d of [vda, vdb]) {
    expect(await restoreMatches([join(vmDir, 'backup', `disk.${d.n}.0`)], d.expectedNow)).toBe(true);
  }
}

/** The guest writes a fresh pattern into both disks, so every point differs from the last. */
async function writeBoth(): Promise<void> {
  byte += 1;
  const offset = (byte % 24) * MIB;
  await vda.write(dom, byte, offset, MIB);
  await vdb.write(dom, byte + 0x40, offset, MIB);
}

/** A copy the second call made: it reads what the disk reads (no write ran meanwhile). */
async function expectCopy(d: LiveDisk, name: string): Promise<void> {
  const file = join(vmDir, name);
  expect(await imagesIdentical(file, 'qcow2', d.expectedNow, 'raw')).toBe(true);
  rmSync(file);
}

function newCopyName(): string {
  copies += 1;
  return `copy-${copies}.qcow2`;
}

async function expectAllConsistent(): Promise<void> {
  await vda.expectConsistent(dom);
  await vdb.expectConsistent(dom);
}

/** The refused call: LOCKED, one line. */
function expectLocked(o: Outcome<unknown>): void {
  expect(o.status).toBe('rejected');
  const err = (o as PromiseRejectedResult).reason as StorageError;
  expect(err).toBeInstanceOf(StorageError);
  expect(err.reason).toBe('LOCKED');
  expect(err.message.split('\n')).toHaveLength(1);
}

beforeAll(async () => {
  await ensureLibvirt();
  await destroyIfRunning(DOMAIN);
  await vda.make(SIZE);
  await vdb.make(SIZE);
  dom = await startDomain(
    DOMAIN,
    [
      { target: 'vda', path: vda.disk, format: 'qcow2' },
      { target: 'vdb', path: vdb.disk, format: 'qcow2' },
    ],
    base,
  );
  // Two snapshots on each disk to start with, so deletes have something to take.
  for (const d of [vda, vdb]) {
    for (const id of [0, 1]) {
      await writeBoth();
      expect((await create(queued, d, id)()).created).toBe(true);
      await d.snapshotTaken(id);
    }
  }
  await expectAllConsistent();
}, 180_000);

afterAll(async () => {
  await dom?.destroy();
  rmSync(base, { recursive: true, force: true });
});

describe('queued: the second call waits, then works on what the first left', () => {
  it('snap_create_live S and S+1 on one disk', async () => {
    await writeBoth();
    const s = vda.nextId;
    const [a, b] = await race(queued.agent.locks, create(queued, vda, s), create(queued, vda, s + 1));
    expect([value(a).created, value(b).created]).toEqual([true, true]);
    await vda.snapshotTaken(s);
    await vda.snapshotTaken(s + 1);
    expect(await dom.source('vda')).toBe(join(vda.snapDir, String(s + 2)));
    await expectAllConsistent();
  });

  it('snap_create_live S twice on one disk (a repeat): the second finds it made', async () => {
    await writeBoth();
    const s = vda.nextId;
    const [a, b] = await race(queued.agent.locks, create(queued, vda, s), create(queued, vda, s));
    expect([value(a).created, value(b).created]).toEqual([true, false]);
    await vda.snapshotTaken(s);
    await expectAllConsistent();
  });

  it('snap_create_live S twice started in the same tick (no order): one makes it, one finds it', async () => {
    await writeBoth();
    const s = vda.nextId;
    const both = await Promise.allSettled([create(queued, vda, s)(), create(queued, vda, s)()]);
    expect(both.map((o) => value(o).created).sort()).toEqual([false, true]);
    await vda.snapshotTaken(s);
    await expectAllConsistent();
  });

  it('snap_create_live and a live snap_delete on one disk, in both orders', async () => {
    await writeBoth();
    const s = vda.nextId;
    const old = vda.newest();
    const [a, b] = await race(queued.agent.locks, create(queued, vda, s), remove(queued, vda, old));
    expect([value(a).created, value(b).existed]).toEqual([true, true]);
    await vda.snapshotTaken(s);
    vda.snapshotDeleted(old);
    await expectAllConsistent();
    await writeBoth();
    const s2 = vda.nextId;
    const old2 = vda.newest();
    const [c, d] = await race(queued.agent.locks, remove(queued, vda, old2), create(queued, vda, s2));
    expect([value(c).existed, value(d).created]).toEqual([true, true]);
    vda.snapshotDeleted(old2);
    await vda.snapshotTaken(s2);
    await expectAllConsistent();
  });

  it('two live snap_deletes on one disk', async () => {
    await writeBoth();
    const ids = [...vda.snapshots.keys()].sort((x, y) => y - x).slice(0, 2);
    const [first = -1, second = -1] = ids;
    const [a, b] = await race(queued.agent.locks, remove(queued, vda, first), remove(queued, vda, second));
    expect([value(a).existed, value(b).existed]).toEqual([true, true]);
    vda.snapshotDeleted(first);
    vda.snapshotDeleted(second);
    await expectAllConsistent();
  });

  it('snap_create_live and CopyDiskLive on one disk, in both orders', async () => {
    await writeBoth();
    const s = vda.nextId;
    const name = newCopyName();
    const [a, b] = await race(queued.agent.locks, create(queued, vda, s), copy(queued, vda, name));
    expect(value(a).created).toBe(true);
    expect(value(b).method).toBe('blockcopy');
    await vda.snapshotTaken(s);
    await expectCopy(vda, name);
    const name2 = newCopyName();
    const s2 = vda.nextId;
    const [c, d] = await race(queued.agent.locks, copy(queued, vda, name2), create(queued, vda, s2));
    expect(value(c).method).toBe('blockcopy');
    expect(value(d).created).toBe(true);
    await vda.snapshotTaken(s2);
    await expectCopy(vda, name2);
    await expectAllConsistent();
  });

  it('CopyDiskLive and a live snap_delete on one disk', async () => {
    await writeBoth();
    const old = vda.oldest();
    const name = newCopyName();
    const [a, b] = await race(queued.agent.locks, copy(queued, vda, name), remove(queued, vda, old));
    expect(value(a).method).toBe('blockcopy');
    expect(value(b).existed).toBe(true);
    vda.snapshotDeleted(old);
    await expectCopy(vda, name);
    await expectAllConsistent();
  });

  it('two disks of one domain: create+create, create+delete, delete+create, copy+create', async () => {
    await writeBoth();
    const [sa, sb] = [vda.nextId, vdb.nextId];
    const [a, b] = await race(queued.agent.locks, create(queued, vda, sa), create(queued, vdb, sb));
    expect([value(a).created, value(b).created]).toEqual([true, true]);
    await vda.snapshotTaken(sa);
    await vdb.snapshotTaken(sb);
    await expectAllConsistent();

    await writeBoth();
    const [sa2, oldB] = [vda.nextId, vdb.newest()];
    const [c, d] = await race(queued.agent.locks, create(queued, vda, sa2), remove(queued, vdb, oldB));
    expect([value(c).created, value(d).existed]).toEqual([true, true]);
    await vda.snapshotTaken(sa2);
    vdb.snapshotDeleted(oldB);
    await expectAllConsistent();

    await writeBoth();
    const [oldA, sb2] = [vda.oldest(), vdb.nextId];
    const [e, f] = await race(queued.agent.locks, remove(queued, vda, oldA), create(queued, vdb, sb2));
    expect([value(e).existed, value(f).created]).toEqual([true, true]);
    vda.snapshotDeleted(oldA);
    await vdb.snapshotTaken(sb2);
    await expectAllConsistent();

    await writeBoth();
    const name = newCopyName();
    const sa3 = vda.nextId;
    const [g, h] = await race(queued.agent.locks, copy(queued, vdb, name), create(queued, vda, sa3));
    expect(value(g).method).toBe('blockcopy');
    expect(value(h).created).toBe(true);
    await vda.snapshotTaken(sa3);
    await expectCopy(vdb, name);
    await expectAllConsistent();
  });
});

describe('with a live backup', () => {
  it('snap_create_live, then a live backup queued behind it: the backup reads the new layer', async () => {
    await writeBoth();
    const s = vda.nextId;
    const [a, b] = await race(queued.agent.locks, create(queued, vda, s), prepare(queued));
    expect(value(a).created).toBe(true);
    expect(value(b).method).toBe('overlay');
    await vda.snapshotTaken(s);
    await expectBackup();
    await finish(queued);
    expect(existsSync(join(vmDir, 'tmp'))).toBe(false);
    await expectAllConsistent();
  });

  it('a live backup, then snap_create_live of the other disk queued behind it: refused, nothing changed', async () => {
    await writeBoth();
    const s = vdb.nextId;
    const [a, b] = await race(queued.agent.locks, prepare(queued), create(queued, vdb, s));
    expect(value(a).method).toBe('overlay');
    // The domain runs on the backup's overlay until post_backup: not on disk.1's file.
    expect(b.status).toBe('rejected');
    expect(((b as PromiseRejectedResult).reason as StorageError).reason).toBe('BAD_LAYOUT');
    expect(existsSync(join(vdb.snapDir, String(s + 1)))).toBe(false);
    await expectBackup();
    await finish(queued);
    await expectAllConsistent();
  });
});

describe('refused: with a short wait the second call is LOCKED and changes nothing', () => {
  it('on one disk (create+create) and on two disks of one domain (create+create, create+copy)', async () => {
    await writeBoth();
    const s = vda.nextId;
    const [a, b] = await race(refusing.agent.locks, create(refusing, vda, s), create(refusing, vda, s + 1));
    expect(value(a).created).toBe(true);
    expectLocked(b);
    await vda.snapshotTaken(s);
    expect(existsSync(join(vda.snapDir, String(s + 2)))).toBe(false);
    await expectAllConsistent();

    const [sa, sb] = [vda.nextId, vdb.nextId];
    const [c, d] = await race(refusing.agent.locks, create(refusing, vda, sa), create(refusing, vdb, sb));
    expect(value(c).created).toBe(true);
    expectLocked(d);
    await vda.snapshotTaken(sa);
    expect(existsSync(join(vdb.snapDir, String(sb + 1)))).toBe(false);
    await expectAllConsistent();

    const name = newCopyName();
    const sa2 = vda.nextId;
    const [e, f] = await race(refusing.agent.locks, create(refusing, vda, sa2), copy(refusing, vdb, name));
    expect(value(e).created).toBe(true);
    expectLocked(f);
    await vda.snapshotTaken(sa2);
    expect(existsSync(join(vmDir, name))).toBe(false);
    await expectAllConsistent();
  });
});
