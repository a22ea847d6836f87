import type { Stats } from 'node:fs';
import type { DirWatches, Watch } from './dir-watches.js';
import type { VmUsage } from './disk-usage.js';

/** The cache entries of DatastoreScanner (agent/src/monitor/datastore-scanner.ts) and their checks. */
export interface Stamp {
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
}

export interface VmDirEntry {
  /** Absent when the listing was read under a watch (the watch, not a stamp, says it is current). */
  stamp: Stamp | undefined;
  trusted: boolean;
  /** The watch armed before the listing was read; absent: checked by stamp. */
  watch: Watch | undefined;
  /** The last usage reported: returned again (the same object) while nothing in it changed. */
  last?: VmUsage | undefined;
  /** disk.N names, with whether disk.N.snap is there and where disk.N really is (confinement). */
  disks: ReadonlyArray<{
    id: number;
    name: string;
    /** `<vm dir>/disk.N` and `<vm dir>/disk.N.snap`, built once per listing. */
    path: string;
    snapPath: string;
    /** disk.N.snap is there; `snapDirLink` when it is a symlink (checked against the roots). */
    hasSnapDir: boolean;
    snapDirLink: boolean;
    outside: string | undefined;
    /** The cached listing of disk.N.snap/, carried over when the VM directory is read again. */
    snap?: SnapDirEntry | undefined;
  }>;
}

/** A numeric entry of the datastore directory. */
export interface VmName {
  id: number;
  path: string;
  isLink: boolean;
  /** The cache of this VM directory (carried over when the datastore is listed again). */
  entry?: VmDirEntry | undefined;
}

export interface SnapFile {
  id: number;
  name: string;
  ino: number;
  dev: number;
  sizeMb: number;
}

export interface SnapDirEntry {
  stamp: Stamp | undefined;
  trusted: boolean;
  /** The watch armed before the listing was read; absent: checked by stamp. */
  watch: Watch | undefined;

  /** The active layer's inode when the listing was read: its size is DISK_SIZE, not a snapshot's. */
  activeIno: number;
  activeDev: number;
  /** The active layer's path inside this directory, when it is one of its (non-symlink) files. */
  activePath: string | undefined;
  files: readonly SnapFile[];
  /** The files but the active layer, as reported. */
  snapshots: ReadonlyArray<{ id: number; sizeMb: number }>;
}

export function stampOf(st: Stats): Stamp {
  return { ino: st.ino, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

export function sameStamp(a: Stamp, st: Stats): boolean {
  return a.ino === st.ino && a.mtimeMs === st.mtimeMs && a.ctimeMs === st.ctimeMs;
}

/** What the cache holds after a cycle (its memory follows these counts) and the watches armed. */
export interface CacheSize {
  vmDirs: number;
  snapDirs: number;
  layers: number;
  watches: number;
}

export interface ScanCounters {
  dirsRead: number;
  filesStatted: number;
}

export interface ScanResult {
  vms: VmUsage[];
  cache: CacheSize;
  /** One line per thing that could not be read (path and why); the scan went on without it. */
  problems: string[];
  counters: ScanCounters;
}

export interface ScannerOptions {
  fullRefreshEvery?: number;
  /** True when a real path lies inside the agent's roots; a disk leading elsewhere is not measured. */
  isConfined: (realPath: string) => boolean;
  /** Change notification: directories watched and unchanged are not stat'ed. Absent: stat only. */
  watches?: DirWatches;
  /** The clock for the racy window (tests inject one). */
  now?: () => number;
}
