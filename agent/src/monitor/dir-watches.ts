import { watch } from 'node:fs';

/** What a watch reports: `rename` (an entry added, removed or moved; the listing changed) or `change`. */
export type WatchEvent = (type: 'rename' | 'change', name: string | null) => void;
/** Arms one inotify watch on a directory (Node's fs.watch); throws when the kernel refuses one. */
export type WatchFn = (dir: string, onEvent: WatchEvent, onError: () => void) => { close(): void };

/** Default bound on watches per agent: 10,000 VMs of 2 disks need 30,001, about 42 MB of RSS. */
export const DEFAULT_MAX_WATCHES = 40_000;

/** One budget shared by all the datastores of an agent (fs.inotify.max_user_watches is per user). */
export interface WatchBudget {
  readonly max: number;
  used: number;
  /** Why the last watch was refused (once set, arming is retried only on a full pass). */
  refused: string | undefined;
}

/** One armed watch, as the scanner's cache entry holds it. */
export interface Watch {
  /** Touches the watch for this pass; true while no entry was added, removed or moved. */
  current(): boolean;
  /** Names whose content or attributes changed since the last call (a backing file rewritten). */
  takeChanged(): readonly string[];
}

/** What takeChanged returns in the steady case: one shared empty list, no allocation per disk. */
const NOTHING_CHANGED: readonly string[] = Object.freeze([]);

class Armed implements Watch {
  handle: { close(): void } = { close: () => undefined };
  /** An entry was added, removed or moved, the watch failed or was closed: read the listing again. */
  stale = false;
  readonly changed = new Set<string>();
  /** The pass that last asked about it: unasked watches are closed by dropUnasked. */
  pass: number;

  constructor(private readonly owner: DirWatches) {
    this.pass = owner.passNo;
  }

  current(): boolean {
    this.owner.touch(this);
    return !this.stale;
  }

  takeChanged(): readonly string[] {
    if (this.changed.size === 0) return NOTHING_CHANGED;
    const names = [...this.changed];
    this.changed.clear();
    return names;
  }
}

const nodeWatch: WatchFn = (dir, onEvent, onError) => {
  const w = watch(dir, { persistent: false }, (type, name) =>
    onEvent(type === 'rename' ? 'rename' : 'change', name === null ? null : String(name)),
  );
  w.on('error', onError);
  return w;
};

/**
 * Change notification for the directories one scanner reads: a directory whose watch was armed
 * before its listing was read, and that reported no `rename` since, still has that listing; the
 * scanner then skips its stat. A directory without a watch (the budget or the kernel's
 * fs.inotify.max_user_watches ran out, or the filesystem gives no events) is checked with stat as
 * before. Events can still be lost (the kernel's queue overflows under a write storm): the
 * scanner's periodic full pass re-reads everything whatever the watches say.
 */
export class DirWatches {
  private readonly armed = new Map<string, Armed>();
  passNo = 0;
  private asked = 0;

  constructor(
    private readonly budget: WatchBudget,
    private readonly watchFn: WatchFn = nodeWatch,
  ) {}

  /** Number of armed watches (each holds one kernel watch and about 1.4 KB of agent memory). */
  get size(): number {
    return this.armed.size;
  }

  /** A full pass: a refused watch may be tried again (watches were freed, the limit raised). */
  newPass(full: boolean): void {
    if (full) this.budget.refused = undefined;
    this.passNo++;
    this.asked = 0;
  }

  /**
   * Call right before reading `dir`: (re-)arms its watch and forgets what it reported. True when
   * the directory is watched from now on; false when it must be checked with stat.
   */
  begin(dir: string): Watch | undefined {
    const old = this.armed.get(dir);
    if (old && !old.stale) {
      old.changed.clear();
      this.touch(old);
      return old;
    }
    // A stale watch may be on a directory removed and made again: a new one follows the new inode.
    if (old) this.drop(dir, old);
    if (this.budget.refused !== undefined || this.budget.used >= this.budget.max) {
      this.budget.refused ??= `${this.budget.max} watches in use (monitor.maxWatches)`;
      return undefined;
    }
    const state = new Armed(this);
    try {
      state.handle = this.watchFn(
        dir,
        (type, name) => {
          if (type === 'rename' || name === null) state.stale = true;
          else state.changed.add(name);
        },
        () => (state.stale = true),
      );
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOSPC: fs.inotify.max_user_watches reached; EMFILE: max_user_instances. Others: the
      // directory went or cannot be watched; it is read with stat until the next attempt.
      if (code === 'ENOSPC' || code === 'EMFILE')
        this.budget.refused = `${dir}: no inotify watch left (${code}, fs.inotify.max_user_watches)`;
      return undefined;
    }
    this.armed.set(dir, state);
    this.asked++;
    this.budget.used++;
    return state;
  }

  /** True when `dir` has been watched since its listing was read and no entry was added or removed. */
  clean(dir: string): boolean {
    return this.armed.get(dir)?.current() ?? false;
  }

  /** Closes the watches of directories this pass did not ask about (removed VMs and disks). */
  dropUnasked(): void {
    if (this.asked === this.armed.size) return;
    for (const [dir, a] of this.armed) if (a.pass !== this.passNo) this.drop(dir, a);
    this.asked = this.armed.size;
  }

  close(): void {
    for (const [dir, a] of this.armed) this.drop(dir, a);
  }

  /** Counts `a` as asked about in this pass (the scanner's entries call it through current()). */
  touch(a: Armed): void {
    if (a.pass === this.passNo) return;
    a.pass = this.passNo;
    this.asked++;
  }

  private drop(dir: string, a: Armed): void {
    if (a.pass === this.passNo) this.asked--;
    a.handle.close();
    a.stale = true;
    this.armed.delete(dir);
    this.budget.used--;
  }
}
