import { mkdirSync, rmSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../../test/support/agent/agent-fixture.js';
import { duMiB, makeQcow2Disk, writeData } from '../../../test/support/agent/monitor-fixtures.js';
import { DatastoreScanner } from './datastore-scanner.js';
import type { VmUsage } from './disk-usage.js';

let base: string;
let ds: string;
beforeEach(async () => {
  base = await makeTempDir('monitor-scan-');
  ds = join(base, 'datastores', '0');
  mkdirSync(ds, { recursive: true });
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const confinedToBase = (real: string): boolean => real.startsWith(`${base}/`);

/** Sets a directory's times a minute back, so the scanner may trust its cached listing. */
function age(...dirs: string[]): void {
  const past = new Date(Date.now() - 60_000);
  for (const d of dirs) utimesSync(d, past, past);
}

function byVm(vms: VmUsage[]): Record<number, VmUsage> {
  return Object.fromEntries(vms.map((v) => [v.vmId, v]));
}

describe('DatastoreScanner', () => {
  it('reports the active layer as DISK_SIZE and every other numeric layer as SNAPSHOT_SIZE, multi-digit ids included, as du -mL measures them', async () => {
    const vm = join(ds, '123');
    const d0 = await makeQcow2Disk(vm, 0, [9, 10, 11, 12], [3, 2, 1, 4]);
    const d1 = await makeQcow2Disk(vm, 10, [0], [2]);
    const result = await new DatastoreScanner(ds, { isConfined: confinedToBase }).scan();
    expect(result.problems).toEqual([]);
    const [l9, l10, l11] = d0.layers as [string, string, string];
    expect(result.vms).toEqual([
      {
        vmId: 123,
        disks: [
          {
            diskId: 0,
            sizeMb: await duMiB(join(vm, 'disk.0')),
            snapshots: [
              { id: 9, sizeMb: await duMiB(l9) },
              { id: 10, sizeMb: await duMiB(l10) },
              { id: 11, sizeMb: await duMiB(l11) },
            ],
          },
          { diskId: 10, sizeMb: await duMiB(d1.active), snapshots: [] },
        ],
      },
    ]);
    // The data written is what is reported: 4 MiB in the active layer, 3 in the oldest.
    expect(result.vms[0]?.disks[0]?.sizeMb).toBeGreaterThanOrEqual(4);
    expect(result.vms[0]?.disks[0]?.snapshots[0]?.sizeMb).toBeGreaterThanOrEqual(3);
  });

  it('reports allocated, not apparent, sizes: a 1 GiB sparse raw disk with nothing written is 0 MiB', async () => {
    const vm = join(ds, '7');
    mkdirSync(vm);
    writeFileSync(join(vm, 'disk.0'), Buffer.alloc(1024 * 1024, 1));
    // 1 GiB apparent, nothing written: one hole.
    writeFileSync(join(vm, 'disk.1'), '');
    truncateSync(join(vm, 'disk.1'), 1024 * 1024 * 1024);
    // Raw snapshots are full copies in disk.N.snap; all of them count (none is the active layer).
    mkdirSync(join(vm, 'disk.0.snap'));
    writeFileSync(join(vm, 'disk.0.snap', '0'), Buffer.alloc(2 * 1024 * 1024, 2));
    const result = await new DatastoreScanner(ds, { isConfined: confinedToBase }).scan();
    expect(result.vms).toEqual([
      {
        vmId: 7,
        disks: [
          { diskId: 0, sizeMb: 1, snapshots: [{ id: 0, sizeMb: 2 }] },
          { diskId: 1, sizeMb: 0, snapshots: [] },
        ],
      },
    ]);
  });

  it('skips VM directories without disks and names that are not VM ids', async () => {
    mkdirSync(join(ds, '5'));
    writeFileSync(join(ds, '5', 'deployment.0'), 'x');
    mkdirSync(join(ds, 'lost+found'));
    mkdirSync(join(ds, '6'));
    writeFileSync(join(ds, '6', 'disk.1'), Buffer.alloc(4096, 1));
    writeFileSync(join(ds, '.monitor'), 'grpc\n');
    const result = await new DatastoreScanner(ds, { isConfined: confinedToBase }).scan();
    expect(result.vms.map((v) => v.vmId)).toEqual([6]);
    expect(result.problems).toEqual([]);
  });

  it('names unreadable disks (dangling, looping, leading outside the roots) and still reports the rest', async () => {
    const vm = join(ds, '8');
    mkdirSync(vm);
    symlinkSync('disk.0.snap/3', join(vm, 'disk.0')); // dangling
    symlinkSync('disk.1', join(vm, 'disk.1')); // a loop
    symlinkSync('/etc/hostname', join(vm, 'disk.2')); // outside the roots
    writeFileSync(join(vm, 'disk.3'), Buffer.alloc(4096, 3));
    const result = await new DatastoreScanner(ds, { isConfined: confinedToBase }).scan();
    expect(result.vms).toEqual([{ vmId: 8, disks: [{ diskId: 3, sizeMb: 1, snapshots: [] }] }]);
    expect(result.problems).toHaveLength(3);
    expect(result.problems[0]).toMatch(/\/8\/disk\.0: cannot read: no such file/);
    expect(result.problems[1]).toMatch(/\/8\/disk\.1: cannot read: too many levels of symbolic links/);
    expect(result.problems[2]).toMatch(/\/8\/disk\.2: leads to \/etc\/hostname, outside the datastore roots/);
  });

  it('does not follow a VM directory or a snapshot directory that leads outside the roots', async () => {
    const elsewhere = await makeTempDir('monitor-outside-');
    try {
      writeFileSync(join(elsewhere, 'disk.0'), Buffer.alloc(4096, 1));
      mkdirSync(join(elsewhere, 'snaps'));
      writeFileSync(join(elsewhere, 'snaps', '0'), Buffer.alloc(4096, 1));
      symlinkSync(elsewhere, join(ds, '77'));
      const vm = join(ds, '78');
      mkdirSync(vm);
      writeFileSync(join(vm, 'disk.0'), Buffer.alloc(4096, 2));
      symlinkSync(join(elsewhere, 'snaps'), join(vm, 'disk.0.snap'));
      const result = await new DatastoreScanner(ds, { isConfined: confinedToBase }).scan();
      expect(result.vms).toEqual([{ vmId: 78, disks: [{ diskId: 0, sizeMb: 1, snapshots: [] }] }]);
      expect(result.problems).toEqual([
        `${ds}/77: leads to ${elsewhere}, outside the datastore roots; not measured`,
        `${vm}/disk.0.snap: leads outside the datastore roots; snapshots not measured`,
      ]);
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('in steady state reads no directory and stats only the active layers; a changed directory is re-read', async () => {
    const vms = ['1', '2', '3'].map((v) => join(ds, v));
    for (const vm of vms) await makeQcow2Disk(vm, 0, [0, 1, 2], [1, 1, 1]);
    const scanner = new DatastoreScanner(ds, { isConfined: confinedToBase, fullRefreshEvery: 100 });
    age(...vms, ...vms.map((v) => join(v, 'disk.0.snap')));
    const cold = await scanner.scan();
    expect(cold.counters).toEqual({ dirsRead: 6, filesStatted: 3 + 9 });

    const steady = await scanner.scan();
    expect(steady.counters).toEqual({ dirsRead: 0, filesStatted: 3 });
    expect(steady.vms).toEqual(cold.vms);

    // The guest writes into VM 2's active layer: seen without re-reading anything else.
    await writeData(join(vms[1] as string, 'disk.0'), 40, 3, 0x77);
    const grown = await scanner.scan();
    expect(grown.counters).toEqual({ dirsRead: 0, filesStatted: 3 });
    expect(byVm(grown.vms)[2]?.disks[0]?.sizeMb).toBe((byVm(cold.vms)[2]?.disks[0]?.sizeMb ?? 0) + 3);

    // A new snapshot file in VM 3: its snap directory changed, so it (alone) is listed again.
    writeFileSync(join(vms[2] as string, 'disk.0.snap', '17'), Buffer.alloc(1024 * 1024, 9));
    const added = await scanner.scan();
    expect(added.counters).toEqual({ dirsRead: 1, filesStatted: 3 + 4 });
    expect(byVm(added.vms)[3]?.disks[0]?.snapshots.map((s) => s.id)).toEqual([0, 1, 17]);

    // VM 1 is removed: gone from the result and from the cache.
    rmSync(vms[0] as string, { recursive: true });
    const removed = await scanner.scan();
    expect(removed.vms.map((v) => v.vmId)).toEqual([2, 3]);
  });

  it('re-reads everything every fullRefreshEvery cycles', async () => {
    const vm = join(ds, '4');
    await makeQcow2Disk(vm, 0, [0, 1], [1, 1]);
    age(vm, join(vm, 'disk.0.snap'));
    const scanner = new DatastoreScanner(ds, { isConfined: confinedToBase, fullRefreshEvery: 2 });
    const counters = [];
    for (let i = 0; i < 4; i++) counters.push((await scanner.scan()).counters.dirsRead);
    expect(counters).toEqual([2, 0, 2, 0]);
  });

  it('throws when the datastore directory itself is gone', async () => {
    const scanner = new DatastoreScanner(join(ds, 'nope'), { isConfined: confinedToBase });
    await expect(scanner.scan()).rejects.toThrow(/ENOENT/);
  });
});
