// How `one-storage jobs` prints: a table with a progress bar per running step on a terminal, one
// plain line per job otherwise (logs, scripts that grep), JSON with --json.
import { describeProgress, formatDuration, percentDone } from '../../../common/src/format-progress.js';
import type { JobView, StepView } from './read-jobs.js';

const BAR_WIDTH = 24;
/** Characters of the request id shown; `one-storage cancel` accepts this prefix. */
export const SHORT_ID = 8;

/** The step a running job is reported by: the one with progress, else the oldest. */
function mainStep(job: JobView): StepView | undefined {
  return job.steps.find((s) => s.progressAt !== undefined) ?? job.steps[0];
}

function elapsed(job: JobView, now: number): string {
  return formatDuration((job.endedAt ?? now) - job.startedAt);
}

function progressText(step: StepView): string {
  const where = `${step.phase || step.rpc} on ${step.host}`;
  if (step.progressAt === undefined) return `${where}: started`;
  return `${where}: ${describeProgress(step)}`;
}

function endText(job: JobView): string {
  if (job.state === 'success')
    return job.bytes ? `moved ${describeProgress({ done: job.bytes, total: 0, rate: 0 })}` : '';
  return job.error ?? '';
}

/**
 * One line per job, no control characters: for pipes, logs and `--watch` when not on a terminal.
 * Without `now` the elapsed time is left out (what --watch compares to see whether a job moved).
 */
export function plainLine(job: JobView, now: number | undefined): string {
  const vm = job.vmId === undefined ? '' : ` vm=${job.vmId}`;
  const time = now === undefined ? '' : ` ${elapsed(job, now)}`;
  const head = `${job.requestId.slice(0, SHORT_ID)} ${job.state} ${job.action}${vm}${time}`;
  const step = mainStep(job);
  const tail = job.state === 'running' ? (step ? progressText(step) : '') : endText(job);
  return tail === '' ? head : `${head} ${tail}`;
}

function bar(step: StepView): string {
  const pct = percentDone(step);
  if (pct === undefined) return `[${' '.repeat(BAR_WIDTH)}]`;
  const filled = Math.round((pct / 100) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${pct.toFixed(1).padStart(5)}%`;
}

/** The terminal view: a header, then each job with a bar under it while it runs. */
export function tableLines(jobs: readonly JobView[], now: number): string[] {
  if (jobs.length === 0) return ['no running or recent jobs'];
  const lines = [
    `${'JOB'.padEnd(SHORT_ID)}  ${'STATE'.padEnd(9)}  ${'ACTION'.padEnd(24)}  ${'VM'.padEnd(5)}  TIME`,
  ];
  for (const job of jobs) {
    lines.push(
      `${job.requestId.slice(0, SHORT_ID).padEnd(SHORT_ID)}  ${job.state.padEnd(9)}  ${job.action.padEnd(24)}  ${String(job.vmId ?? '-').padEnd(5)}  ${elapsed(job, now)}`,
    );
    if (job.state === 'running') {
      for (const step of job.steps) lines.push(`          ${bar(step)}  ${progressText(step)}`);
    } else {
      const text = endText(job);
      if (text !== '') lines.push(`          ${text}`);
    }
  }
  return lines;
}
