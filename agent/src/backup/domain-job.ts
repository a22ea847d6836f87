import { StorageError } from '../../../common/src/errors.js';
import type { Logger } from '../../../common/src/log.js';
import type { Progress } from '../jobs/job-registry.js';
import { hasDomainJob } from '../libvirt/domain.js';
import { type VirshOptions, virsh } from '../libvirt/virsh.js';

/** How often a running libvirt backup job is polled. */
const JOB_POLL_MS = 100;
/** How long an aborted job may take to go away (domjobabort is asynchronous). */
const ABORT_WAIT_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
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
  for (;;) {
    if (signal.aborted) {
      await abortDomainJob(domain, quiet, opts.log);
      throw new StorageError('TOOL_FAILED', `${opts.what}: the backup job of ${domain} was cancelled`);
    }
    const job = await runningJob(domain, quiet);
    if (!job) break;
    if (job.figures)
      opts.progress?.({ done: job.figures.processed, total: job.figures.total, phase: 'backup' });
    await sleep(JOB_POLL_MS);
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
  await virsh(['domjobabort', domain], opts).catch((err: unknown) => {
    // The job may have ended between the check and the abort.
    log.warn({ domain, err: (err as Error).message }, 'domjobabort failed');
  });
  const deadline = performance.now() + ABORT_WAIT_MS;
  while (await jobRunning(domain, opts)) {
    if (performance.now() > deadline) {
      throw new StorageError('BUSY', `${opts.what}: the job of ${domain} did not stop after domjobabort`);
    }
    await sleep(JOB_POLL_MS);
  }
  return true;
}
