import { StorageError } from '../../../common/src/errors.js';
import type { Progress } from '../jobs/job-registry.js';
import { type BlockJobStatus, onBlockJobEvents } from './virsh-events.js';
import { VIRSH, type VirshOptions, virsh } from './virsh.js';

/**
 * How often a waiter asks libvirt about the job itself: the safety net under the events (a stream
 * not yet registered, or restarted) and the source of progress figures. An ended job is normally
 * seen at its event, long before this.
 */
export const BLOCK_JOB_POLL_MS = 250;

/** Where a block job's progress goes: its phase and the bytes the whole job stands for. */
export interface BlockJobProgress {
  readonly report: (p: Progress) => void;
  readonly phase: string;
  /** The disk's virtual size: libvirt counts the job's work in its own units (cur of end). */
  readonly total: number;
}

/** The job types as libvirt's events name them. */
export type BlockJobKind = 'Block Pull' | 'Block Copy' | 'Block Commit' | 'Active Block Commit';

/** What to do when a mirror job (a copy, an active commit) is ready: switch to it, or keep the copy. */
export type WhenReady = 'pivot' | 'finish';

export interface BlockJobWaitOptions {
  /** Mirror jobs only: what ends them once ready. A pull or a plain commit ends by itself. */
  readonly whenReady?: WhenReady;
  readonly progress?: BlockJobProgress | undefined;
  readonly timeoutMs: number;
  readonly pollMs?: number;
}

/**
 * A block job on one disk, watched from before it starts (so its end cannot be missed) until it
 * ends: by libvirt's block-job-2 event (virsh-events.ts) where one comes, else by the poll. The
 * caller starts the job (a virsh command without `--wait`, which returns at once), then awaits
 * `ended`, and always calls `close`.
 */
export class BlockJobWatch {
  private readonly events: BlockJobStatus[] = [];
  private wake: (() => void) | undefined;
  private readonly off: () => void;
  /** Queries and the abort run without the caller's signal: they must run after it fired. */
  private readonly quiet: VirshOptions;

  constructor(
    private readonly domain: string,
    private readonly target: string,
    kind: BlockJobKind,
    private readonly opts: VirshOptions,
  ) {
    this.quiet = { uri: opts.uri, what: opts.what };
    this.off = onBlockJobEvents(VIRSH, opts.uri, (e) => {
      // The kind keeps out a late event of the disk's previous job (a finished copy's "canceled").
      if (e.domain !== domain || e.target !== target || e.kind !== kind) return;
      this.events.push(e.status);
      this.wake?.();
    });
  }

  /**
   * Resolves when the job ended well: `completed` (libvirt said so, or a mirror was pivoted or
   * finished here), or `gone` (no job any more and no event said how: the caller checks the
   * result). Rejects when libvirt reports it failed or was cancelled, on timeout, and when the
   * caller's signal fires (the job is aborted first, so the disk is free again).
   */
  async ended(w: BlockJobWaitOptions): Promise<'completed' | 'gone'> {
    const deadline = performance.now() + w.timeoutMs;
    const pollMs = w.pollMs ?? BLOCK_JOB_POLL_MS;
    const signal = this.opts.signal;
    const figures = w.progress;
    let last = 0;
    figures?.report({ done: 0, total: figures.total, phase: figures.phase });
    const how = await this.loop(w, deadline, pollMs, signal, (cur, end) => {
      if (!figures || end <= 0) return;
      const done = Math.round((figures.total * Math.min(cur, end)) / end);
      if (done <= last) return;
      last = done;
      figures.report({ done, total: figures.total });
    });
    figures?.report({ done: figures.total, total: figures.total });
    return how;
  }

  private async loop(
    w: BlockJobWaitOptions,
    deadline: number,
    pollMs: number,
    signal: AbortSignal | undefined,
    progress: (cur: number, end: number) => void,
  ): Promise<'completed' | 'gone'> {
    for (;;) {
      if (signal?.aborted) {
        await this.abort();
        throw new StorageError(
          'TOOL_FAILED',
          `${this.opts.what}: the block job on ${this.where()} was cancelled`,
        );
      }
      if (performance.now() > deadline) {
        await this.abort();
        throw new StorageError(
          'TOOL_FAILED',
          `${this.opts.what}: the block job on ${this.where()} did not end within ${w.timeoutMs} ms`,
        );
      }
      const status = this.events.shift();
      if (status === 'completed') return 'completed';
      if (status === 'failed' || status === 'canceled') {
        throw new StorageError(
          'TOOL_FAILED',
          `${this.opts.what}: the block job on ${this.where()} ${status}`,
        );
      }
      if (status === 'ready' && w.whenReady) {
        await this.endMirror(w.whenReady);
        return 'completed';
      }
      if (status !== undefined) continue;
      const job = await this.query();
      if (!job) {
        if (this.events.length > 0) continue;
        if (w.whenReady) {
          throw new StorageError(
            'TOOL_FAILED',
            `${this.opts.what}: the block job on ${this.where()} ended before it was ready`,
          );
        }
        return 'gone';
      }
      progress(job.cur, job.end);
      await this.next(pollMs, signal);
    }
  }

  close(): void {
    this.off();
    this.wake?.();
  }

  private where(): string {
    return `${this.target} of ${this.domain}`;
  }

  /** `blockjob --raw` (libvirt 9): ` type=Block Pull`, ` cur=N`, ` end=M` lines; nothing without a job. */
  private async query(): Promise<{ cur: number; end: number } | undefined> {
    const out = await virsh(['blockjob', this.domain, this.target, '--raw'], this.quiet);
    if (!/\btype=/.test(out)) return undefined;
    return { cur: Number(/\bcur=(\d+)/.exec(out)?.[1] ?? 0), end: Number(/\bend=(\d+)/.exec(out)?.[1] ?? 0) };
  }

  /** Ends a ready mirror: `--pivot` switches the disk to the copy, `--abort` keeps the copy apart. */
  private async endMirror(how: WhenReady): Promise<void> {
    await virsh(['blockjob', this.domain, this.target, how === 'pivot' ? '--pivot' : '--abort'], this.quiet);
  }

  private async abort(): Promise<void> {
    await virsh(['blockjob', this.domain, this.target, '--abort'], this.quiet).catch(() => undefined);
  }

  private next(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.wake = done;
      if (this.events.length > 0 || signal?.aborted) done();
    });
  }
}

/** Watches the block job of `kind` about to start on `target` of `domain`: see BlockJobWatch. */
export function watchBlockJob(
  domain: string,
  target: string,
  kind: BlockJobKind,
  opts: VirshOptions,
): BlockJobWatch {
  return new BlockJobWatch(domain, target, kind, opts);
}
