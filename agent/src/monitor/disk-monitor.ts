import { realpathSync } from 'node:fs';
import type { Logger } from '../../../common/src/log.js';
import type { RootConfig } from '../config.js';
import { isInside } from '../paths/roots.js';
import { filesystemCapacity, type DatastoreCapacity } from './capacity.js';
import { DatastoreScanner, DEFAULT_FULL_REFRESH_EVERY, type CacheSize } from './datastore-scanner.js';
import { DEFAULT_MAX_WATCHES, DirWatches, type WatchBudget } from './dir-watches.js';
import { MEASURED_DRIVERS, markedDatastores } from './marked-datastores.js';
import { systemHostLines, vmLine, type DatastoreFigures } from './templates.js';
import { makeDirectory } from '../files/make-directory.js';

/** Datastores asked for by path whose caches are kept (a node has a handful). */
const MAX_ASKED_DATASTORES = 64;

/**
 * What this node knows about its datastores for monitoring: the per-VM disk lines of every marked
 * datastore and the SYSTEM_HOST capacity lines. One scanner (with its cache) per datastore
 * directory; a datastore that disappears drops its scanner. Problems are logged once when they
 * appear, not every cycle.
 */
export class DiskMonitor {
  /** Marked datastores (push and probes cycles): dropped when the marker or directory goes. */
  private readonly scanners = new Map<string, DatastoreScanner>();
  /** Datastores asked for by path (monitor_ds, MonitorDatastore): few, kept apart so a push cycle does not drop them. */
  private readonly askedScanners = new Map<string, DatastoreScanner>();
  private reported = new Set<string>();
  /** One watch budget for all the datastores; absent: no watches (monitor.watch: false). */
  private readonly budget: WatchBudget | undefined;
  private refusalLogged: string | undefined;

  constructor(
    private readonly roots: readonly RootConfig[],
    private readonly logger: Logger,
    private readonly fullRefreshEvery = DEFAULT_FULL_REFRESH_EVERY,
    watch: { enabled: boolean; max: number } = { enabled: true, max: DEFAULT_MAX_WATCHES },
  ) {
    this.budget = watch.enabled ? { max: watch.max, used: 0, refused: undefined } : undefined;
  }

  /** What the caches hold over all datastores (their memory follows these counts). */
  cacheSize(): CacheSize {
    const total: CacheSize = { vmDirs: 0, snapDirs: 0, layers: 0, watches: 0 };
    for (const s of [...this.scanners.values(), ...this.askedScanners.values()]) {
      const c = s.cacheSize();
      total.vmDirs += c.vmDirs;
      total.snapDirs += c.snapDirs;
      total.layers += c.layers;
      total.watches += c.watches;
    }
    return total;
  }

  /** Closes every watch (the agent stops). */
  close(): void {
    for (const s of [...this.scanners.values(), ...this.askedScanners.values()]) s.close();
    this.scanners.clear();
    this.askedScanners.clear();
  }

  /** `VM = [...]` lines of every marked datastore with a driver whose layout the agent reads. */
  async allVmLines(): Promise<string[]> {
    const problems: string[] = [];
    const lines: string[] = [];
    const marked = await markedDatastores(this.roots);
    for (const ds of marked) {
      if (!MEASURED_DRIVERS.has(ds.driver)) {
        problems.push(
          `${ds.localDir}/.monitor: driver "${ds.driver}" is not one whose disks this agent measures (${[...MEASURED_DRIVERS].join(', ')})`,
        );
        continue;
      }
      lines.push(...(await this.scanInto(this.scanners, ds.localDir, problems)));
    }
    this.forget(new Set(marked.map((d) => d.localDir)));
    this.report(problems);
    return lines;
  }

  /** `VM = [...]` lines of one datastore directory (monitor_ds, MonitorDatastore). */
  async vmLines(localDir: string): Promise<string[]> {
    const problems: string[] = [];
    const lines = await this.scanInto(this.askedScanners, localDir, problems);
    this.report(problems);
    return lines;
  }

  /** SYSTEM_HOST lines: the first root's filesystem (DATASTORE_LOCATION) and every marked datastore. */
  async systemLines(): Promise<string[]> {
    const location = this.roots[0];
    if (!location) return [];
    const capacity = await filesystemCapacity(location.path);
    const figures: DatastoreFigures[] = [];
    for (const ds of await markedDatastores(this.roots)) {
      // Removed since it was listed: no line, as df would print nothing.
      const c = await filesystemCapacity(ds.localDir).catch(() => undefined);
      if (c) figures.push({ id: ds.id, ...c });
    }
    return systemHostLines(capacity, figures);
  }

  /** Capacity of a datastore directory, created first when missing (tm/qcow2/monitor does so). */
  async capacity(localDir: string): Promise<DatastoreCapacity> {
    await makeDirectory(localDir);
    return filesystemCapacity(localDir);
  }

  private async scanInto(
    scanners: Map<string, DatastoreScanner>,
    localDir: string,
    problems: string[],
  ): Promise<string[]> {
    let scanner = scanners.get(localDir);
    if (!scanner) {
      scanner = new DatastoreScanner(localDir, {
        fullRefreshEvery: this.fullRefreshEvery,
        isConfined: confinedTo(this.roots),
        ...(this.budget ? { watches: new DirWatches(this.budget) } : {}),
      });
      scanners.set(localDir, scanner);
      // Bounded whatever callers ask for: the oldest cache goes first.
      if (scanners.size > MAX_ASKED_DATASTORES && scanners === this.askedScanners) {
        const oldest = scanners.keys().next().value as string;
        scanners.get(oldest)?.close();
        scanners.delete(oldest);
      }
    }
    try {
      const result = await scanner.scan();
      problems.push(...result.problems);
      this.reportRefusal();
      return result.vms.map(vmLine);
    } catch (err) {
      scanner.close();
      scanners.delete(localDir);
      problems.push(`${localDir}: cannot list the datastore: ${(err as Error).message}`);
      return [];
    }
  }

  /** Drops the caches of datastores that are no longer marked (or no longer exist). */
  private forget(keep: ReadonlySet<string>): void {
    for (const [dir, s] of this.scanners) {
      if (keep.has(dir)) continue;
      s.close();
      this.scanners.delete(dir);
    }
  }

  /** Once per refusal: the watches ran out, directories are stat'ed from now on (still exact). */
  private reportRefusal(): void {
    const why = this.budget?.refused;
    if (why === undefined || why === this.refusalLogged) return;
    this.refusalLogged = why;
    this.logger.warn(
      { reason: why, watches: this.budget?.used },
      'monitoring: no more directory watches; the rest are checked with stat each cycle',
    );
  }

  private report(problems: readonly string[]): void {
    const now = new Set(problems);
    for (const p of now) if (!this.reported.has(p)) this.logger.warn({ problem: p }, 'monitoring: skipped');
    this.reported = now;
  }
}

/** The confinement test for real paths: inside one of the roots' real directories. */
function confinedTo(roots: readonly RootConfig[]): (real: string) => boolean {
  const realRoots = roots.map((r) => {
    try {
      return realpathSync.native(r.path);
    } catch {
      return r.path;
    }
  });
  return (real) => realRoots.some((r) => isInside(real, r));
}
