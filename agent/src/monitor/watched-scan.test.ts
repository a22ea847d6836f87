import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../../test/support/agent/agent-fixture.js';
import { DatastoreScanner, RACY_WINDOW_MS } from './datastore-scanner.js';
import { DirWatches, type WatchBudget, type WatchFn } from './dir-watches.js';

let base: string;
let ds: string;
const open: DatastoreScanner[] = [];
beforeEach(async () => {
  base = await makeTempDir('monitor-watch-');
  ds = join(base, 'datastores', '0');
  mkdirSync(ds, { recursive: true });
});
afterEach(async () => {
  for (const s of open.splice(0)) s.close();
  await rm(base, { recursive: true, force: true });
});

const MIB = 1024 * 1024;
/** An injected clock past the racy window: a stamp-checked listing is trusted at once, no sleep. */
const later = (): number => Date.now() + 10 * RACY_WINDOW_MS;
const budget = (max = 1000): WatchBudget => ({ max, used: 0, refused: undefined });

/** A VM as the qcow2 driver lays it out: disk.N -> disk.N.snap/<active>, other layers snapshots. */
function makeVm(vm: number, disks = 2, layers = [0, 1, 2]): string {
  const dir = join(ds, String(vm));
  for (let d = 0; d < disks; d++) {
    mkdirSync(join(dir, `disk.${d}.snap`), { recursive: true });
    for (const l of layers) writeFileSync(join(dir, `disk.${d}.snap`, String(l)), Buffer.alloc(MIB, 1));
    symlinkSync(`disk.${d}.snap/${layers.at(-1)}`, join(dir, `disk.${d}`));
  }
  return dir;
}

function scanner(watchFn?: WatchFn, fullRefreshEvery = 1000, max = 1000): DatastoreScanner {
  const s = new DatastoreScanner(ds, {
    isConfined: (real) => real.startsWith(`${base}/`),
    fullRefreshEvery,
    watches: new DirWatches(budget(max), watchFn),
    now: later,
  });
  open.push(s);
  return s;
}

/** What a fresh scanner (no cache, no watch) reports: the truth to compare with. */
async function truth(): Promise<unknown> {
  return (await new DatastoreScanner(ds, { isConfined: () => true }).scan()).vms;
}

/** A watch that reports nothing: every change is "missed", as when the kernel's queue overflows. */
const deaf: WatchFn = () => ({ close: () => undefined });

describe('DatastoreScanner with directory watches', () => {
  it('a steady cycle stats only the active layers; changes made between cycles are in the next one', async () => {
    for (const vm of [1, 2, 3, 4]) makeVm(vm);
    const s = scanner();
    const cold = await s.scan();
    expect(cold.counters).toEqual({ dirsRead: 12, filesStatted: 8 + 24 });
    // The cold cycle arms no watch; the next arms them before checking the stamps (trusted by the
    // injected clock), and reads nothing again.
    expect(cold.cache).toEqual({ vmDirs: 4, snapDirs: 8, layers: 24, watches: 0 });
    const arming = await s.scan();
    expect(arming.counters).toEqual({ dirsRead: 0, filesStatted: 8 });
    expect(arming.cache.watches).toBe(13);
    const steady = await s.scan();
    expect(steady.counters).toEqual({ dirsRead: 0, filesStatted: 8 });
    expect(steady.vms).toEqual(cold.vms);

    // A guest writes: the active layer grows (stat'ed every cycle).
    writeFileSync(join(ds, '1', 'disk.0.snap', '2'), Buffer.alloc(3 * MIB, 2));
    // A new snapshot layer: a file in disk.1.snap/ and the disk.1 link moved to it.
    writeFileSync(join(ds, '2', 'disk.1.snap', '3'), Buffer.alloc(2 * MIB, 3));
    rmSync(join(ds, '2', 'disk.1'));
    symlinkSync('disk.1.snap/3', join(ds, '2', 'disk.1'));
    // A snapshot deleted (nothing else moves), a backing file rewritten (qemu-img commit).
    rmSync(join(ds, '3', 'disk.0.snap', '0'));
    writeFileSync(join(ds, '3', 'disk.1.snap', '1'), Buffer.alloc(4 * MIB, 4));
    // A VM deleted, a VM created.
    rmSync(join(ds, '4'), { recursive: true });
    makeVm(5, 1, [0]);
    const next = await s.scan();
    expect(next.vms).toEqual(await truth());
    expect(next.vms.map((v) => v.vmId)).toEqual([1, 2, 3, 5]);
    // Only what changed was read again (and the datastore, not counted): VM 2 and 5, the snapshot
    // directories of VM 2's disk.1, VM 3's two disks and VM 5's disk.0.
    expect(next.counters.dirsRead).toBe(2 + 4);
    // VM 4's three watches closed; VM 5 is new, so its two wait for the next cycle.
    expect(next.cache).toEqual({ vmDirs: 4, snapDirs: 7, layers: 19, watches: 10 });
    expect((await s.scan()).counters).toEqual({ dirsRead: 0, filesStatted: 7 });
  });

  it('what a missed event hides is caught by the full pass; a grown disk and a deleted VM at once', async () => {
    for (const vm of [1, 2]) makeVm(vm);
    const s = scanner(deaf, 4);
    const cold = await s.scan(); // cycle 0: full
    await s.scan(); // cycle 1: the watches armed
    writeFileSync(join(ds, '1', 'disk.0.snap', '5'), Buffer.alloc(MIB, 5)); // a snapshot: missed
    makeVm(3, 1, [0]); // a new VM: missed
    writeFileSync(join(ds, '2', 'disk.1.snap', '2'), Buffer.alloc(2 * MIB, 2)); // a write: seen
    const missed = await s.scan();
    expect(missed.vms.map((v) => v.vmId)).toEqual([1, 2]);
    expect(missed.vms[0]).toEqual(cold.vms[0]);
    expect(missed.vms[1]?.disks[1]?.sizeMb).toBe(2);
    // A deleted VM is seen without its event: its disks are gone, so its directory is read again.
    rmSync(join(ds, '2'), { recursive: true });
    const deleted = await s.scan();
    expect(deleted.vms.map((v) => v.vmId)).toEqual([1]);
    expect(deleted.problems).toEqual([]);
    const full = await s.scan(); // cycle 4: full
    expect(full.vms).toEqual(await truth());
    expect(full.vms.map((v) => v.vmId)).toEqual([1, 3]);
    expect(full.vms[0]?.disks[0]?.snapshots.map((x) => x.id)).toEqual([0, 1, 5]);
  });

  it('when watches run out, the rest are checked with stat and the figures stay exact', async () => {
    for (const vm of [1, 2, 3]) makeVm(vm, 1);
    const s = scanner(undefined, 1000, 4);
    await s.scan();
    expect((await s.scan()).cache.watches).toBe(4);
    const steady = await s.scan();
    // Watched: the datastore and VM 1 with its snapshot directory, and VM 2; stat'ed: the rest.
    expect(steady.counters).toEqual({ dirsRead: 0, filesStatted: 3 });
    writeFileSync(join(ds, '3', 'disk.0.snap', '9'), Buffer.alloc(MIB, 9));
    const next = await s.scan();
    expect(next.vms).toEqual(await truth());
    expect(next.vms[2]?.disks[0]?.snapshots.map((x) => x.id)).toEqual([0, 1, 9]);
  });

  it('reports an unchanged VM with the very object it reported before (its line is reused)', async () => {
    makeVm(1);
    const s = scanner();
    await s.scan();
    const first = await s.scan();
    const second = await s.scan();
    expect(second.vms[0]).toBe(first.vms[0]);
    writeFileSync(join(ds, '1', 'disk.1.snap', '2'), Buffer.alloc(2 * MIB, 2));
    const third = await s.scan();
    expect(third.vms[0]).not.toBe(first.vms[0]);
    expect(third.vms).toEqual(await truth());
  });
});
