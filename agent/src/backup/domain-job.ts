import { StorageError } from '../../../common/src/errors.js';
import type { Logger } from '../../../common/src/log.js';
import type { Progress } from '../jobs/job-registry.js';
import { hasDomainJob } from '../libvirt/domain.js';
import { onDomainEvents } from '../libvirt/virsh-events.js';
import { VIRSH, type VirshOptions, virsh } from '../libvirt/virsh.js';

/**
 * How often a running libvirt backup job is polled for its figures. Its end is seen at once: any
 * event of the domain (libvirt's `job-completed` among them) wakes the wait early.
 */
const JOB_POLL_MS = 250;
/** How long an aborted job may take to go away (domjobabort is asynchronous). */
const ABORT_WAIT_MS = 30_000;

/**
 * Waits between two looks at a domain's job: `ms`, or less when libvirt reports an event of the
 * domain (its `job-completed` among them) since the last look. Listens from its creation, so an
 * event that comes while a look runs is not lost.
 */
class DomainWake {
  private seen = false;
  private wake: (() => void) | undefined;
  private readonly off: () => void;

  constructor(domain: string, uri: string) {
    this.off = onDomainEvents(VIRSH, uri, (e) => {
      if (e.domain !== domain) return;
      this.seen = true;
      this.wake?.();
    });
  }

  next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        this.seen = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
      if (this.seen) done();
    });
  }

  close(): void {
    this.off();
  }
}

/**
 * libvirt 9 answers `domjobinfo` with "internal error: backup job data missing" for a moment while
 * a backup job starts or ends (seen here): the job is there, its statistics are not yet.
 */
const JOB_DATA_MISSING = /backup job data missing/i;

/** hasDomainJob, riding over libvirt's transient "backup job data missing" answer. */
async function jobRunning(domain: string, opts: VirshOptions): Promise<boolean> {
  try {
    return await hasDomainJob(domain, opts);
  } catch (err) {
    if (JOB_DATA_MISSING.test((err as Error).message)) return true;
    throw err;
  }
}

/** Bytes a running backup job has written of those it will (domjobinfo's disk_processed, disk_total). */
interface JobFigures {
  processed: number;
  total: number;
}

/**
 * The domain's job as `domjobinfo --rawstats` tells it: undefined when none runs, else its disk
 * figures (none while libvirt has none yet, as in its transient "backup job data missing" answer).
 */
async function runningJob(domain: string, opts: VirshOptions): Promise<{ figures?: JobFigures } | undefined> {
  try {
    return jobStatsOf(await virsh(['domjobinfo', domain, '--rawstats'], opts));
  } catch (err) {
    if (JOB_DATA_MISSING.test((err as Error).message)) return {};
    throw err;
  }
}

/**
 * Parses `virsh domjobinfo --rawstats` (libvirt 9): "Job type: 2" (0: no job), then `key: value`
 * lines, `disk_processed` and `disk_total` among them for a backup. Raw, not the human form, which
 * rounds to a thousandth of a MiB.
 */
export function jobStatsOf(out: string): { figures?: JobFigures } | undefined {
  const type = /^Job type:\s*(\d+)/m.exec(out)?.[1];
  if (type === undefined || type === '0') return undefined;
  const processed = Number(/^disk_processed:\s*(\d+)/m.exec(out)?.[1] ?? NaN);
  const total = Number(/^disk_total:\s*(\d+)/m.exec(out)?.[1] ?? NaN);
  return Number.isFinite(processed) && Number.isFinite(total) ? { figures: { processed, total } } : {};
}

/**
 * Waits for the domain's backup job (started by `virsh backup-begin`, which returns at once) to
 * end, then reads how it ended (`domjobinfo --completed`). The caller's signal aborts the job
 * (`domjobabort`) and fails. A job that ended in any other way than Completed fails with libvirt's words.
 * Each poll reports the job's disk figures to `opts.progress` (phase "backup").
 */
export async function waitForBackupJob(
  domain: string,
  opts: VirshOptions & { log: Logger; progress?: ((p: Progress) => void) | undefined },
  signal: AbortSignal,
): Promise<void> {
  const quiet: VirshOptions = { uri: opts.uri, what: opts.what };
  const wake = new DomainWake(domain, opts.uri);
  try {
    for (;;) {
      if (signal.aborted) {
        await abortDomainJob(domain, quiet, opts.log);
        throw new StorageError('TOOL_FAILED', `${opts.what}: the backup job of ${domain} was cancelled`);
      }
      const job = await runningJob(domain, quiet);
      if (!job) break;
      if (job.figures)
        opts.progress?.({ done: job.figures.processed, total: job.figures.total, phase: 'backup' });
      await wake.next(JOB_POLL_MS);
    }
  } finally {
    wake.close();
  }
  const out = await virsh(['domjobinfo', domain, '--completed'], quiet);
  const type = /Job type:\s*(\S+)/.exec(out)?.[1];
  if (type !== 'Completed') {
    const why = /Error message:\s*(.+)/.exec(out)?.[1]?.trim();
    throw new StorageError(
      'TOOL_FAILED',
      `${opts.what}: the backup job of ${domain} ended ${type ?? 'without a status'}${why ? `: ${why}` : ''}`,
    );
  }
}

/** Aborts the domain's job when one runs (a stale or cancelled backup) and waits until it is gone. */
export async function abortDomainJob(domain: string, opts: VirshOptions, log: Logger): Promise<boolean> {
  if (!(await jobRunning(domain, opts))) return false;
  log.warn({ domain }, 'aborting the running libvirt job of the domain (domjobabort)');
  const wake = new DomainWake(domain, opts.uri);
  try {
    await virsh(['domjobabort', domain], opts).catch((err: unknown) => {
      // The job may have ended between the check and the abort.
      log.warn({ domain, err: (err as Error).message }, 'domjobabort failed');
    });
    const deadline = performance.now() + ABORT_WAIT_MS;
    while (await jobRunning(domain, opts)) {
      if (performance.now() > deadline) {
        throw new StorageError('BUSY', `${opts.what}: the job of ${domain} did not stop after domjobabort`);
      }
      await wake.next(JOB_POLL_MS);
    }
  } finally {
    wake.close();
  }
  return true;
}
