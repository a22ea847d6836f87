import type { Logger } from '../../../common/src/log.js';
import type { Progress as JobProgress } from '../jobs/job-registry.js';
import { type Clock, realClock } from './clock.js';

/** A progress line at least this often while bytes arrive... */
const INTERVAL_MS = 5_000;
/** ...and each time another tenth of a known total has arrived. */
const STEP_FRACTION = 0.1;

/**
 * The progress lines of one download (docs/image-datastore.md#registering-an-image-cp-on-the-agent):
 * bytes so far, the average rate, and when the total is known the percentage and an ETA; then one
 * line at the end. Only counts: the caller decides what the bytes are.
 */
export class Progress {
  private bytes = 0;
  private readonly started: number;
  private lastLine: number;
  private nextStep: number;
  private total: number | undefined;

  constructor(
    private readonly log: Logger,
    private readonly fields: Record<string, unknown>,
    private readonly clock: Clock = realClock,
    /** CallContext.progress: every chunk reports its bytes (phase "downloading"). */
    private readonly report?: (p: JobProgress) => void,
  ) {
    report?.({ done: 0, total: 0, phase: 'downloading' });
    this.started = clock.now();
    this.lastLine = this.started;
    this.nextStep = Number.POSITIVE_INFINITY;
  }

  /** The size the source announced (Content-Length, the file's size), when it did. */
  expect(total: number | undefined): void {
    this.total = total;
    this.report?.({ done: this.bytes, total: total ?? 0, phase: 'downloading' });
    this.nextStep = total ? total * STEP_FRACTION : Number.POSITIVE_INFINITY;
  }

  /** A transient failure: the source tries again from `offset` (a Range request). */
  retrying(why: string, offset: number): void {
    this.log.warn({ ...this.fields, why, offset }, 'import retrying');
  }

  add(n: number): void {
    this.bytes += n;
    this.report?.({ done: this.bytes });
    const now = this.clock.now();
    if (now - this.lastLine < INTERVAL_MS && this.bytes < this.nextStep) return;
    this.lastLine = now;
    if (this.total) {
      const step = this.total * STEP_FRACTION;
      this.nextStep = (Math.floor(this.bytes / step) + 1) * step;
    }
    this.log.info({ ...this.fields, ...this.figures(now) }, 'import progress');
  }

  /** The closing line: everything fetched, how long it took, the average rate. */
  done(extra: Record<string, unknown> = {}): void {
    this.log.info({ ...this.fields, ...this.figures(this.clock.now()), ...extra }, 'import fetched');
  }

  private figures(now: number): Record<string, number> {
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const rate = Math.round(this.bytes / seconds);
    const out: Record<string, number> = {
      bytes: this.bytes,
      bytesPerSecond: rate,
      ms: Math.round(now - this.started),
    };
    if (this.total) {
      out['total'] = this.total;
      out['percent'] = Math.min(100, Math.floor((this.bytes / this.total) * 100));
      if (rate > 0) out['etaSeconds'] = Math.max(0, Math.round((this.total - this.bytes) / rate));
    }
    return out;
  }
}
