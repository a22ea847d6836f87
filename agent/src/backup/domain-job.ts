import { StorageError } from '../../../common/src/errors.js';
import type { Logger } from '../../../common/src/log.js';
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

/**
 * Waits for the domain's backup job (started by `virsh backup-begin`, which returns at once) to
 * end, then reads how it ended (`domjobinfo --completed`). The caller's signal aborts the job
 * (`domjobabort`) and fails. A job that ended in any other way than Completed fails with libvirt's words.
 */
export async function waitForBackupJob(
  domain: string,
  opts: VirshOptions & { log: Logger },
  signal: AbortSignal,
): Promise<void> {
  const quiet: VirshOptions = { uri: opts.uri, what: opts.what };
  for (;;) {
    if (signal.aborted) {
      await abortDomainJob(domain, quiet, opts.log);
      throw new StorageError('TOOL_FAILED', `${opts.what}: the backup job of ${domain} was cancelled`);
    }
    if (!(await jobRunning(domain, quiet))) break;
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
  const deadline = Date.now() + ABORT_WAIT_MS;
  while (await jobRunning(domain, opts)) {
    if (Date.now() > deadline) {
      throw new StorageError('BUSY', `${opts.what}: the job of ${domain} did not stop after domjobabort`);
    }
    await sleep(JOB_POLL_MS);
  }
  return true;
}
