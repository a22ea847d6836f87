import { StorageError } from '../../../common/src/errors.js';
import { isInside } from '../paths/roots.js';

/**
 * How long a call waits for a path another call holds before answering ABORTED (reason LOCKED).
 * Short on purpose: it absorbs the common overlap of a quick call (MakeDir, Stat-then-Delete) with
 * another, while a long copy makes the second caller back off and retry with its own deadline
 * instead of piling up behind it.
 */
export const DEFAULT_LOCK_WAIT_MS = 2_000;

export type Release = () => void;

interface Held {
  readonly paths: readonly string[];
  readonly released: Promise<void>;
}

/**
 * The lock key of a libvirt domain: every live action (snap_create_live, live snap_delete, live
 * cpds, live backups) holds it besides its paths, so two live actions on one domain (on the same
 * disk or on two of its disks) never interleave their reads of the domain and their changes. A key
 * that is not an absolute path only meets the same key (domain names hold no "/").
 */
export function domainLockKey(domain: string): string {
  return `libvirt-domain:${domain}`;
}

/**
 * In-process locks on local paths (and on keys such as domainLockKey). A lock on a directory also
 * covers everything below it, so a Delete of a VM directory and a Copy into one of its disks never
 * run at the same time; siblings (disk.0, disk.1) do not block each other. A call that needs
 * several paths or keys gets all of them at once or none (no order to keep), so two calls can
 * never deadlock holding one each.
 */
export class PathLocks {
  private readonly held = new Set<Held>();

  constructor(private readonly waitMs = DEFAULT_LOCK_WAIT_MS) {}

  /**
   * Waits up to waitMs for `paths` to be free, then holds them until the returned function is
   * called. Throws LOCKED with `label` ("delete host01:/var/lib/one/datastores/0/42") otherwise.
   */
  async acquire(paths: readonly string[], label: string, signal?: AbortSignal): Promise<Release> {
    const deadline = performance.now() + this.waitMs;
    for (;;) {
      signal?.throwIfAborted();
      const blocker = this.conflict(paths);
      if (!blocker) return this.hold(paths);
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        throw new StorageError('LOCKED', `${label}: another call is working on this path; retry later`);
      }
      await waitFor(blocker.released, remaining);
    }
  }

  /** Runs `fn` holding `paths`, releasing them however it ends. */
  async withLock<T>(
    paths: readonly string[],
    label: string,
    fn: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    const release = await this.acquire(paths, label, signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Number of calls holding locks (for tests and diagnostics). */
  get size(): number {
    return this.held.size;
  }

  private conflict(paths: readonly string[]): Held | undefined {
    for (const h of this.held) {
      if (h.paths.some((a) => paths.some((b) => overlap(a, b)))) return h;
    }
    return undefined;
  }

  private hold(paths: readonly string[]): Release {
    let resolve: () => void = () => undefined;
    const entry: Held = { paths: [...paths], released: new Promise<void>((r) => (resolve = r)) };
    this.held.add(entry);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.held.delete(entry);
      resolve();
    };
  }
}

/** Two paths overlap when one lies inside the other; a key that is not a path only meets itself. */
function overlap(a: string, b: string): boolean {
  if (!a.startsWith('/') || !b.startsWith('/')) return a === b;
  return isInside(a, b) || isInside(b, a);
}

function waitFor(released: Promise<void>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    void released.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
