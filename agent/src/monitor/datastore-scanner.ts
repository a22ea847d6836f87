import { readdirSync, realpathSync, statSync, type Dirent, type Stats } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { allocatedMb, type DiskUsage, type VmUsage } from './disk-usage.js';
import type { DirWatches, Watch } from './dir-watches.js';
import {
  sameStamp,
  stampOf,
  type SnapDirEntry,
  type SnapFile,
  type Stamp,
  type VmDirEntry,
  type VmName,
} from './scan-cache.js';
import { gone, why } from './scan-problems.js';
import type { CacheSize, ScanCounters, ScannerOptions, ScanResult } from './scan-cache.js';

export type { CacheSize, ScanCounters, ScannerOptions, ScanResult } from './scan-cache.js';

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
/** A disk without `disk.N.snap/`: one shared empty list, so an unchanged VM compares equal. */
const NO_SNAPSHOTS: ReadonlyArray<{ id: number; sizeMb: number }> = Object.freeze([]);

/**
 * Per-VM disk usage of one datastore directory, cached between cycles as a tree (datastore listing,
 * VM listings, snapshot listings with their layers' sizes). A listing is re-read only when its
 * directory changed: known by an inotify watch (`watches`, armed from a directory's second cycle
 * on) or, without one, by the directory's stamp. Each cycle stats every disk's active layer (what
 * guests write); everything is re-read every `fullRefreshEvery` cycles. The cache holds only what
 * the last cycle saw, so memory follows the datastore's size.
 *
 * Sizes are allocated blocks (`du -m`), DISK_SIZE is the active layer only and every other numeric
 * file of `disk.N.snap/` is a SNAPSHOT_SIZE: nothing is counted twice (docs/monitoring.md).
 */
export class DatastoreScanner {
  private size: CacheSize = { vmDirs: 0, snapDirs: 0, layers: 0, watches: 0 };
  private cycle = 0;
  private readonly fullRefreshEvery: number;
  /** The datastore's numeric entries, reused while its watch reports nothing added or removed. */
  private listing: VmName[] | undefined;

  constructor(
    readonly localDir: string,
    private readonly opts: ScannerOptions,
  ) {
    this.fullRefreshEvery = opts.fullRefreshEvery ?? DEFAULT_FULL_REFRESH_EVERY;
  }

  /** Throws only when the datastore directory itself cannot be listed. */
  async scan(): Promise<ScanResult> {
    const full = this.cycle++ % this.fullRefreshEvery === 0;
    const watches = this.opts.watches;
    // Events already queued by the kernel are delivered before anything is trusted.
    if (watches) await yieldToLoop();
    watches?.newPass(full);
    const now = this.opts.now ?? Date.now;
    const run = new ScanRun(full, this.opts.isConfined, watches, now());
    let entries = this.listing;
    if (!entries || full || !watches?.clean(this.localDir)) {
      // Armed from the second listing on, as the directories below (the cold cycle arms none).
      if (this.listing) watches?.begin(this.localDir);
      const old = new Map((this.listing ?? []).map((n) => [n.path, n.entry]));
      this.listing = undefined;
      entries = readdirSync(this.localDir, { withFileTypes: true })
        .filter((e) => NUMERIC.test(e.name))
        .map((e) => {
          const path = `${this.localDir}/${e.name}`;
          return { id: Number(e.name), path, isLink: e.isSymbolicLink(), entry: old.get(path) };
        })
        .sort((a, b) => a.id - b.id);
      // Kept with or without a watch (a watchless one is listed again each cycle, entries carried).
      this.listing = entries;
    }
    const vms: VmUsage[] = [];
    for (let i = 0; i < entries.length; i++) {
      if (i > 0 && i % VMS_PER_SLICE === 0) await yieldToLoop();
      const entry = entries[i] as VmName;
      const vm = run.vm(entry);
      if (vm) vms.push(vm);
    }
    // Only what this cycle saw is kept: removed VMs and datastores leave the cache.
    watches?.dropUnasked();
    this.size = { ...run.size, watches: watches?.size ?? 0 };
    return { vms, cache: this.cacheSize(), problems: run.problems, counters: run.counters };
  }

  cacheSize(): CacheSize {
    return { ...this.size };
  }

  /** Closes the watches (the datastore is no longer monitored). */
  close(): void {
    this.opts.watches?.close();
    this.listing = undefined;
  }
}

/** The state of one cycle: the previous cache to reuse from, the next one being built. */
class ScanRun {
  readonly problems: string[] = [];
  readonly counters: ScanCounters = { dirsRead: 0, filesStatted: 0 };
  readonly size = { vmDirs: 0, snapDirs: 0, layers: 0 };
  private readonly trustBefore: number;
  /** One VM's problems, kept apart until it is measured for good (a stale listing discards them). */
  private readonly pending: string[] = [];

  constructor(
    private readonly full: boolean,
    private readonly isConfined: (real: string) => boolean,
    private readonly watches: DirWatches | undefined,
    now: number,
  ) {
    this.trustBefore = now - RACY_WINDOW_MS;
  }

  vm(name: VmName): VmUsage | undefined {
    name.entry = this.vmUsage(name.path, name.id, name.isLink, name.entry);
    if (name.entry) this.size.vmDirs++;
    return name.entry?.last;
  }

  /** The VM's cache entry after this cycle; its `last` is the usage to report (absent: no disk). */
  private vmUsage(
    dir: string,
    vmId: number,
    isLink: boolean,
    previous: VmDirEntry | undefined,
  ): VmDirEntry | undefined {
    // Only symlinks can lead outside the roots: regular entries of a confined directory cannot.
    const outside = isLink ? this.outside(dir) : undefined;
    if (outside !== undefined) {
      this.problems.push(`${dir}: leads to ${outside}, outside the datastore roots; not measured`);
      return undefined;
    }
    let entry = previous;
    const byWatch = this.watchedClean(entry);
    if (!byWatch) entry = this.vmEntry(dir, entry);
    if (!entry) return undefined;
    // A disk gone from a listing its watch called current: an event was lost; read it again.
    if (this.measure(dir, vmId, entry, byWatch) === 'stale') {
      entry = this.vmEntry(dir, entry);
      if (entry) this.measure(dir, vmId, entry, false);
    }
    return entry;
  }

  /** The VM directory's listing, checked with stat (no watch, or a watch that saw a change). */
  private vmEntry(dir: string, entry: VmDirEntry | undefined): VmDirEntry | undefined {
    // A directory seen for the first time is read by stamp (a cold cycle arms no watch); from the
    // next cycle on, its watch is armed before the stamp is checked, and a listing found unchanged
    // becomes a watched one.
    const watch = entry ? this.watches?.begin(dir) : undefined;
    if (watch && entry?.stamp === undefined) return this.readVmDir(dir, undefined, watch, entry);
    const st = this.stat(dir);
    if (!st?.isDirectory()) return undefined;
    if (entry && this.reusable(entry, st)) {
      if (watch) entry.watch = watch;
      return entry;
    }
    return this.readVmDir(dir, watch ? undefined : st, watch, entry);
  }

  private measure(
    dir: string,
    vmId: number,
    entry: VmDirEntry,
    byWatch: boolean,
  ): VmUsage | undefined | 'stale' {
    // Allocation-free while nothing changed: `disks` is built only from the first difference with
    // the last usage, which is otherwise returned as it is (and its line reused).
    const last = entry.last?.disks;
    let disks: DiskUsage[] | undefined;
    let n = 0;
    const problems = this.pending;
    problems.length = 0;
    for (const d of entry.disks) {
      const path = d.path;
      if (d.outside !== undefined) {
        problems.push(`${path}: leads to ${d.outside}, outside the datastore roots; not measured`);
        continue;
      }
      // Both directories unchanged since read: disk.N still leads to the same file; stat it directly.
      const direct = byWatch && d.snap?.activePath !== undefined && this.watchedClean(d.snap);
      const ds = this.statFile(direct ? (d.snap?.activePath as string) : path, problems);
      if (ds === 'gone' && byWatch) return 'stale';
      if (ds === 'gone' || ds === 'failed') continue;
      if (!ds.isFile()) {
        problems.push(`${path}: not a regular file; not measured`);
        continue;
      }
      const snapshots = d.hasSnapDir ? this.snapshots(d, ds) : NO_SNAPSHOTS;
      const sizeMb = allocatedMb(ds.blocks);
      const was = disks === undefined ? last?.[n] : undefined;
      if (was?.diskId !== d.id || was.sizeMb !== sizeMb || was.snapshots !== snapshots) {
        disks ??= last?.slice(0, n) ?? [];
        disks.push({ diskId: d.id, sizeMb, snapshots });
      }
      n++;
    }
    for (const p of problems) this.problems.push(p);
    if (n === 0) entry.last = undefined;
    else if (disks !== undefined || n !== last?.length)
      entry.last = { vmId, disks: disks ?? last?.slice(0, n) ?? [] };
    return entry.last;
  }

  private readVmDir(
    dir: string,
    st: Stats | undefined,
    watch: Watch | undefined,
    previous: VmDirEntry | undefined,
  ): VmDirEntry | undefined {
    const entries = this.list(dir);
    if (!entries) return undefined;
    const snaps = new Map(previous?.disks.map((d) => [d.name, d.snap]));
    const byName = new Map(entries.map((e) => [e.name, e]));
    const disks = entries
      .map((e) => ({ e, m: DISK_NAME.exec(e.name) }))
      .filter((x): x is { e: Dirent; m: RegExpExecArray } => x.m !== null)
      .map(({ e, m }) => {
        const snap = byName.get(`${e.name}.snap`);
        return {
          id: Number(m[1]),
          name: e.name,
          path: `${dir}/${e.name}`,
          snapPath: `${dir}/${e.name}.snap`,
          hasSnapDir: snap !== undefined,
          snapDirLink: snap?.isSymbolicLink() ?? false,
          outside: e.isSymbolicLink() ? this.outside(`${dir}/${e.name}`) : undefined,
          snap: snaps.get(e.name),
        };
      })
      .sort((a, b) => a.id - b.id);
    return { ...this.freshness(st, watch), disks };
  }

  private snapshots(
    disk: VmDirEntry['disks'][number],
    active: Stats,
  ): ReadonlyArray<{ id: number; sizeMb: number }> {
    const dir = disk.snapPath;
    const isLink = disk.snapDirLink;
    let entry = disk.snap;
    const sameActive = entry?.activeIno === active.ino && entry.activeDev === active.dev;
    const clean = sameActive && this.watchedClean(entry);
    // A snapshot layer rewritten: its directory's stamp did not move, so it is read again outright.
    const rewritten = clean && this.backingChanged(entry);
    if (!clean || rewritten) {
      // As for VM directories: no watch at first sight, armed before the stamp check after.
      const watch = entry ? this.watches?.begin(dir) : undefined;
      if (watch && (entry?.stamp === undefined || rewritten)) {
        entry = this.readSnapDir(dir, undefined, watch, active, isLink);
      } else {
        const st = this.stat(dir);
        disk.snap = undefined;
        if (!st?.isDirectory()) return [];
        if (entry && this.reusable(entry, st) && sameActive) {
          if (watch) entry.watch = watch;
        } else {
          entry = this.readSnapDir(dir, watch ? undefined : st, watch, active, isLink);
        }
      }
    }
    disk.snap = entry;
    if (!entry) return [];
    this.size.snapDirs++;
    this.size.layers += entry.files.length;
    return entry.snapshots;
  }

  /** A layer other than the active one was written (qemu-img commit): the directory is read again. */
  private backingChanged(entry: SnapDirEntry | undefined): boolean {
    const names = entry?.watch?.takeChanged();
    // The steady case, nothing written but active layers: no allocation (a closure per disk).
    if (names === undefined || names.length === 0) return false;
    return names.some((n) => entry?.files.some((f) => f.name === n && f.ino !== entry.activeIno) ?? true);
  }

  private readSnapDir(
    dir: string,
    st: Stats | undefined,
    watch: Watch | undefined,
    active: Stats,
    isLink: boolean,
  ): SnapDirEntry | undefined {
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
        files.push({ id: Number(name), name, ino: fs.ino, dev: fs.dev, sizeMb: allocatedMb(fs.blocks) });
    }
    files.sort((a, b) => a.id - b.id);
    const isActive = (f: SnapFile): boolean => f.ino === active.ino && f.dev === active.dev;
    const snapshots = files.filter((f) => !isActive(f)).map((f) => ({ id: f.id, sizeMb: f.sizeMb }));
    const activeFile = files.find(isActive);
    const activePath = activeFile ? `${dir}/${activeFile.name}` : undefined;
    return {
      ...this.freshness(st, watch),
      activeIno: active.ino,
      activeDev: active.dev,
      activePath,
      files,
      snapshots,
    };
  }

  /** How a listing just read is checked later: by its watch (no stat given) or by its stamp. */
  private freshness(
    st: Stats | undefined,
    watch: Watch | undefined,
  ): { stamp: Stamp | undefined; trusted: boolean; watch: Watch | undefined; pass: number } {
    if (!st) return { stamp: undefined, trusted: false, watch, pass: 0 };
    return { stamp: stampOf(st), trusted: st.mtimeMs < this.trustBefore, watch: undefined, pass: 0 };
  }

  private watchedClean(entry: { watch: Watch | undefined } | undefined): boolean {
    return !this.full && entry?.watch !== undefined && entry.watch.current();
  }

  private reusable(entry: { stamp: Stamp | undefined; trusted: boolean } | undefined, st: Stats): boolean {
    return entry?.stamp !== undefined && !this.full && entry.trusted && sameStamp(entry.stamp, st);
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

  /** stat(2) of a disk, following symlinks; 'gone' (ENOENT) and 'failed' are named in `problems`. */
  private statFile(path: string, problems: string[]): Stats | 'gone' | 'failed' {
    try {
      this.counters.filesStatted++;
      return statSync(path);
    } catch (err) {
      problems.push(`${path}: cannot read: ${why(err)}`);
      return gone(err) ? 'gone' : 'failed';
    }
  }
}
