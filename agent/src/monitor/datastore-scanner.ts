import { readdirSync, realpathSync, statSync, type Dirent, type Stats } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { oneLine } from '../../../common/src/errors.js';
import { allocatedMb, type DiskUsage, type VmUsage } from './disk-usage.js';

/** VM directories and snapshot files have numeric names of any length (OpenNebula scans one digit). */
const NUMERIC = /^\d{1,15}$/;
const DISK_NAME = /^disk\.(\d{1,15})$/;
/**
 * A directory listing is reused only while the directory's mtime is unchanged and older than this:
 * a change in the same timestamp tick as our read would otherwise go unseen (git's "racy clean").
 */
export const RACY_WINDOW_MS = 2_000;
/** Every Nth cycle re-reads everything, catching what no directory change reveals (qemu-img commit). */
export const DEFAULT_FULL_REFRESH_EVERY = 10;
/** The scan is synchronous system calls; it gives the event loop back this often (gRPC keeps serving). */
const VMS_PER_SLICE = 64;

interface Stamp {
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
}

interface VmDirEntry {
  stamp: Stamp;
  trusted: boolean;
  /** disk.N names, with whether disk.N.snap is there and where disk.N really is (confinement). */
  disks: ReadonlyArray<{
    id: number;
    name: string;
    /** disk.N.snap is there; `snapDirLink` when it is a symlink (checked against the roots). */
    hasSnapDir: boolean;
    snapDirLink: boolean;
    outside: string | undefined;
  }>;
}

interface SnapFile {
  id: number;
  ino: number;
  dev: number;
  sizeMb: number;
}

interface SnapDirEntry {
  stamp: Stamp;
  trusted: boolean;
  /** The active layer's inode when the listing was read: its size is DISK_SIZE, not a snapshot's. */
  activeIno: number;
  files: readonly SnapFile[];
}

export interface ScanCounters {
  dirsRead: number;
  filesStatted: number;
}

export interface ScanResult {
  vms: VmUsage[];
  /** One line per thing that could not be read (path and why); the scan went on without it. */
  problems: string[];
  counters: ScanCounters;
}

export interface ScannerOptions {
  fullRefreshEvery?: number;
  /** True when a real path lies inside the agent's roots; a disk leading elsewhere is not measured. */
  isConfined: (realPath: string) => boolean;
}

/**
 * Per-VM disk usage of one datastore directory, cached between cycles. A cycle stats each VM
 * directory, each disk (following `disk.N` to its active layer, which the guest writes) and each
 * `disk.N.snap` directory; listings and the sizes of snapshot layers (read-only backing files) are
 * re-read only when their directory changed, and everything every `fullRefreshEvery` cycles. The
 * cache holds only what the last cycle saw, so memory follows the datastore's size.
 *
 * Sizes are allocated blocks (`du -m`), DISK_SIZE is the active layer only and every other numeric
 * file of `disk.N.snap/` is a SNAPSHOT_SIZE: nothing is counted twice (docs/monitoring.md).
 */
export class DatastoreScanner {
  private vmDirs = new Map<string, VmDirEntry>();
  private snapDirs = new Map<string, SnapDirEntry>();
  private cycle = 0;
  private readonly fullRefreshEvery: number;

  constructor(
    readonly localDir: string,
    private readonly opts: ScannerOptions,
  ) {
    this.fullRefreshEvery = opts.fullRefreshEvery ?? DEFAULT_FULL_REFRESH_EVERY;
  }

  /** Throws only when the datastore directory itself cannot be listed. */
  async scan(): Promise<ScanResult> {
    const full = this.cycle++ % this.fullRefreshEvery === 0;
    const run = new ScanRun(this.vmDirs, this.snapDirs, full, this.opts.isConfined);
    const entries = readdirSync(this.localDir, { withFileTypes: true }).filter((e) => NUMERIC.test(e.name));
    entries.sort((a, b) => Number(a.name) - Number(b.name));
    const vms: VmUsage[] = [];
    for (let i = 0; i < entries.length; i++) {
      if (i > 0 && i % VMS_PER_SLICE === 0) await yieldToLoop();
      const entry = entries[i] as Dirent;
      const vm = run.vm(`${this.localDir}/${entry.name}`, Number(entry.name), entry.isSymbolicLink());
      if (vm) vms.push(vm);
    }
    // Only what this cycle saw is kept: removed VMs and datastores leave the cache.
    this.vmDirs = run.nextVmDirs;
    this.snapDirs = run.nextSnapDirs;
    return { vms, problems: run.problems, counters: run.counters };
  }
}

/** The state of one cycle: the previous cache to reuse from, the next one being built. */
class ScanRun {
  readonly nextVmDirs = new Map<string, VmDirEntry>();
  readonly nextSnapDirs = new Map<string, SnapDirEntry>();
  readonly problems: string[] = [];
  readonly counters: ScanCounters = { dirsRead: 0, filesStatted: 0 };
  private readonly trustBefore = Date.now() - RACY_WINDOW_MS;

  constructor(
    private readonly vmDirs: ReadonlyMap<string, VmDirEntry>,
    private readonly snapDirs: ReadonlyMap<string, SnapDirEntry>,
    private readonly full: boolean,
    private readonly isConfined: (real: string) => boolean,
  ) {}

  vm(dir: string, vmId: number, isLink: boolean): VmUsage | undefined {
    // Only symlinks can lead outside the roots: regular entries of a confined directory cannot.
    const outside = isLink ? this.outside(dir) : undefined;
    if (outside !== undefined) {
      this.problems.push(`${dir}: leads to ${outside}, outside the datastore roots; not measured`);
      return undefined;
    }
    const st = this.stat(dir);
    if (!st?.isDirectory()) return undefined;
    let entry = this.vmDirs.get(dir);
    if (!this.reusable(entry, st)) entry = this.readVmDir(dir, st);
    if (!entry) return undefined;
    this.nextVmDirs.set(dir, entry);
    const disks: DiskUsage[] = [];
    for (const d of entry.disks) {
      const path = `${dir}/${d.name}`;
      if (d.outside !== undefined) {
        this.problems.push(`${path}: leads to ${d.outside}, outside the datastore roots; not measured`);
        continue;
      }
      const ds = this.stat(path, true);
      if (!ds) continue;
      if (!ds.isFile()) {
        this.problems.push(`${path}: not a regular file; not measured`);
        continue;
      }
      const snapshots = d.hasSnapDir ? this.snapshots(`${path}.snap`, ds, d.snapDirLink) : [];
      disks.push({ diskId: d.id, sizeMb: allocatedMb(ds.blocks), snapshots });
    }
    return disks.length > 0 ? { vmId, disks } : undefined;
  }

  private readVmDir(dir: string, st: Stats): VmDirEntry | undefined {
    const entries = this.list(dir);
    if (!entries) return undefined;
    const byName = new Map(entries.map((e) => [e.name, e]));
    const disks = entries
      .map((e) => ({ e, m: DISK_NAME.exec(e.name) }))
      .filter((x): x is { e: Dirent; m: RegExpExecArray } => x.m !== null)
      .map(({ e, m }) => {
        const snap = byName.get(`${e.name}.snap`);
        return {
          id: Number(m[1]),
          name: e.name,
          hasSnapDir: snap !== undefined,
          snapDirLink: snap?.isSymbolicLink() ?? false,
          outside: e.isSymbolicLink() ? this.outside(`${dir}/${e.name}`) : undefined,
        };
      })
      .sort((a, b) => a.id - b.id);
    return { stamp: stampOf(st), trusted: st.mtimeMs < this.trustBefore, disks };
  }

  private snapshots(dir: string, active: Stats, isLink: boolean): Array<{ id: number; sizeMb: number }> {
    const st = this.stat(dir);
    if (!st?.isDirectory()) return [];
    let entry = this.snapDirs.get(dir);
    if (!this.reusable(entry, st) || entry?.activeIno !== active.ino) {
      entry = this.readSnapDir(dir, st, active.ino, isLink);
    }
    if (!entry) return [];
    this.nextSnapDirs.set(dir, entry);
    return entry.files
      .filter((f) => !(f.ino === active.ino && f.dev === active.dev))
      .map((f) => ({ id: f.id, sizeMb: f.sizeMb }));
  }

  private readSnapDir(dir: string, st: Stats, activeIno: number, isLink: boolean): SnapDirEntry | undefined {
    if (isLink && this.outside(dir) !== undefined) {
      this.problems.push(`${dir}: leads outside the datastore roots; snapshots not measured`);
      return undefined;
    }
    const entries = this.list(dir);
    if (!entries) return undefined;
    const files: SnapFile[] = [];
    for (const e of entries.filter((x) => NUMERIC.test(x.name))) {
      const name = e.name;
      const path = `${dir}/${name}`;
      const where = e.isSymbolicLink() ? this.outside(path) : undefined;
      if (where !== undefined) {
        this.problems.push(`${path}: leads to ${where}, outside the datastore roots; not measured`);
        continue;
      }
      const fs = this.stat(path, true);
      if (fs?.isFile())
        files.push({ id: Number(name), ino: fs.ino, dev: fs.dev, sizeMb: allocatedMb(fs.blocks) });
    }
    files.sort((a, b) => a.id - b.id);
    return { stamp: stampOf(st), trusted: st.mtimeMs < this.trustBefore, activeIno, files };
  }

  private reusable(entry: { stamp: Stamp; trusted: boolean } | undefined, st: Stats): boolean {
    return entry !== undefined && !this.full && entry.trusted && sameStamp(entry.stamp, st);
  }

  /** The real path when `path` resolves outside the roots; undefined when it is inside or absent. */
  private outside(path: string): string | undefined {
    let real: string;
    try {
      real = realpathSync.native(path);
    } catch {
      return undefined; // absent or looping: stat reports it when the file is measured
    }
    return this.isConfined(real) ? undefined : real;
  }

  private list(dir: string): Dirent[] | undefined {
    try {
      this.counters.dirsRead++;
      return readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if (!gone(err)) this.problems.push(`${dir}: cannot list: ${why(err)}`);
      return undefined;
    }
  }

  /** stat(2), following symlinks; undefined (and, for a file, a problem) when it cannot be read. */
  private stat(path: string, isFile = false): Stats | undefined {
    try {
      if (isFile) this.counters.filesStatted++;
      return statSync(path);
    } catch (err) {
      // A VM directory removed during the cycle is no news; a disk that cannot be read is.
      if (isFile || !gone(err)) this.problems.push(`${path}: cannot read: ${why(err)}`);
      return undefined;
    }
  }
}

function stampOf(st: Stats): Stamp {
  return { ino: st.ino, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

function sameStamp(a: Stamp, st: Stats): boolean {
  return a.ino === st.ino && a.mtimeMs === st.mtimeMs && a.ctimeMs === st.ctimeMs;
}

function gone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function why(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file (a dangling symlink?)';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return oneLine(e.message ?? String(err));
  }
}
