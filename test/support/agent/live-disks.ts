// A running test domain's qcow2 disks in OpenNebula's snapshot layout, with what each one and each
// of its snapshots must read (raw images built with the same writes), and the checks the live
// tests make after every action: disk.N leads to the file the domain runs on, the chain opens and
// stores short backing names, every point reads what was written.
import { mkdirSync, readlinkSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { runTool } from '../../../common/src/tools/run-tool.js';
import type { PathLocks } from '../../../agent/src/locks/path-locks.js';
import { imagesIdentical } from '../files.js';
import type { TestDomain } from '../libvirt.js';
import { checkClean, qemuImg, storedBackingNames, writePattern } from './disk-testing.js';

export class LiveDisk {
  readonly disk: string;
  readonly snapDir: string;
  /** What the running disk reads now. */
  readonly expectedNow: string;
  /** Snapshot id → the raw image of what it must read. */
  readonly snapshots = new Map<number, string>();
  /** The next snapshot id oned would give. */
  nextId = 0;
  /** offset → the byte the guest wrote last there (1 MiB writes). */
  private readonly written = new Map<number, { byte: number; length: number }>();

  constructor(
    readonly vmDir: string,
    readonly n: number,
    readonly target: string,
    private readonly scratch: string,
  ) {
    this.disk = join(vmDir, `disk.${n}`);
    this.snapDir = `${this.disk}.snap`;
    this.expectedNow = join(scratch, `expected-${target}.raw`);
  }

  /** `disk.N -> disk.N.snap/0`, the self link, and an empty expected image. */
  async make(size: number): Promise<void> {
    mkdirSync(this.snapDir, { recursive: true });
    await qemuImg('create', '-q', '-f', 'qcow2', join(this.snapDir, '0'), String(size));
    symlinkSync('.', join(this.snapDir, `disk.${this.n}.snap`));
    symlinkSync(`disk.${this.n}.snap/0`, this.disk);
    await qemuImg('create', '-q', '-f', 'raw', this.expectedNow, String(size));
  }

  /** The guest writes `byte` at `offset`; the expected image gets the same write. */
  async write(dom: TestDomain, byte: number, offset: number, length: number): Promise<void> {
    await dom.write(this.target, byte, offset, length);
    await writePattern(this.expectedNow, 'raw', byte, offset, length);
    this.written.set(offset, { byte, length });
  }

  /** Snapshot `id` was taken now: it must read what the disk reads. */
  async snapshotTaken(id: number): Promise<void> {
    const file = join(this.scratch, `expected-${this.target}-snap-${id}.raw`);
    await runTool('cp', ['--sparse=always', this.expectedNow, file]);
    this.snapshots.set(id, file);
    this.nextId = Math.max(this.nextId, id + 1);
  }

  snapshotDeleted(id: number): void {
    const file = this.snapshots.get(id);
    if (file) rmSync(file, { force: true });
    this.snapshots.delete(id);
  }

  /** The newest snapshot still there. */
  newest(): number {
    const id = Math.max(...this.snapshots.keys());
    if (!Number.isFinite(id)) throw new Error(`${this.target} has no snapshot`);
    return id;
  }

  /** The oldest snapshot still there. */
  oldest(): number {
    const id = Math.min(...this.snapshots.keys());
    if (!Number.isFinite(id)) throw new Error(`${this.target} has no snapshot`);
    return id;
  }

  /**
   * The disk is consistent: disk.N leads to the file the domain runs on; its chain opens
   * (`qemu-img info --backing-chain`, `check`) with every backing name in the short form
   * `disk.N.snap/K`; the disk and every snapshot read what was written, from outside and from the
   * guest; the domain runs.
   */
  async expectConsistent(dom: TestDomain): Promise<void> {
    const link = readlinkSync(this.disk);
    expect(link).toMatch(new RegExp(`^disk\\.${this.n}\\.snap/\\d+$`));
    expect(realpathSync(await dom.source(this.target))).toBe(realpathSync(this.disk));
    const names = await storedBackingNames(this.disk);
    expect(names.at(-1)).toBeUndefined();
    for (const name of names.slice(0, -1)) expect(name).toMatch(new RegExp(`^disk\\.${this.n}\\.snap/\\d+$`));
    await checkClean(this.disk);
    await dom.flush(this.target);
    expect(await imagesIdentical(this.disk, 'qcow2', this.expectedNow, 'raw')).toBe(true);
    for (const [id, file] of this.snapshots) {
      expect(
        await imagesIdentical(join(this.snapDir, String(id)), 'qcow2', file, 'raw'),
        `snapshot ${id}`,
      ).toBe(true);
    }
    // The guest itself still reads what it wrote, through the chain QEMU holds.
    for (const [offset, w] of this.written) await dom.read(this.target, w.byte, offset, w.length);
    expect(await dom.state()).toBe('running');
  }
}

export type Outcome<T> = PromiseSettledResult<T>;

/**
 * Starts `first`, waits until it holds its locks (a real condition, bounded), then starts
 * `second`, so `second` always meets `first` at work; both outcomes, once both ended.
 */
export async function race<A, B>(
  locks: PathLocks,
  first: () => Promise<A>,
  second: () => Promise<B>,
): Promise<[Outcome<A>, Outcome<B>]> {
  const a = first();
  let ended = false;
  void a.then(
    () => (ended = true),
    () => (ended = true),
  );
  const deadline = Date.now() + 10_000;
  while (locks.size === 0 && !ended) {
    if (Date.now() > deadline) throw new Error('the first call never took its locks');
    await new Promise((r) => setTimeout(r, 2));
  }
  const b = second();
  return (await Promise.allSettled([a, b])) as [Outcome<A>, Outcome<B>];
}

/** The value of a call that must have succeeded (its error otherwise). */
export function value<T>(o: Outcome<T>): T {
  if (o.status === 'rejected') throw o.reason;
  return o.value;
}
