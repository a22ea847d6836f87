// `one-storage jobs` and `one-storage cancel`: argument handling and the --watch loop.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadCoordinatorConfig } from '../../../coordinator/src/config.js';
import { DEFAULT_COORDINATOR_CONFIG, DEFAULT_SOCKET } from '../defaults.js';
import { DEFAULT_JOURNAL } from '../journal/show-journal.js';
import { controlRequest } from './control-request.js';
import { readJobs, type JobView } from './read-jobs.js';
import { plainLine, tableLines } from './render-jobs.js';

type Usage = (problem: string) => number;

const DURATION = /^(\d+)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export const JOBS_HELP = `usage: one-storage jobs [--config FILE | --db FILE] [--since 1h] [--limit N] [--watch] [--interval-ms N] [--json]
  Running driver calls with the progress their agents report (bytes, total, rate, time left), and
  the calls that ended within --since (default 1h; s, m, h or d), newest first, at most --limit (50).
  --watch redraws every --interval-ms (1000) until interrupted: a table with a progress bar per step
  on a terminal, otherwise a plain line each time a job's line changes. --json: one JSON document per
  refresh. The journal is the coordinator's (its config's "journal"; --db names the file).`;

export const CANCEL_HELP = `usage: one-storage cancel JOB [--config FILE | --socket PATH]
  Cancels a running driver call: JOB is its request id or the first 8 or more characters of it (as
  one-storage jobs shows). Every agent involved stops, partial files are removed, sources stay as they
  were, and the driver call fails with a one-line "cancelled" error in oned. Talks to the coordinator
  over its socket (its config's "socket"; --socket names it).`;

export async function jobsCommand(args: string[], usage: Usage): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      db: { type: 'string' },
      since: { type: 'string', default: '1h' },
      limit: { type: 'string', default: '50' },
      watch: { type: 'boolean' },
      'interval-ms': { type: 'string', default: '1000' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) return help(JOBS_HELP);
  const since = DURATION.exec(values.since);
  if (!since)
    return usage(`jobs --since must be a number with s, m, h or d (e.g. 30m), got "${values.since}"`);
  const sinceMs = Number(since[1]) * UNIT_MS[since[2] as keyof typeof UNIT_MS];
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit <= 0) return usage('jobs --limit must be a positive integer');
  const intervalMs = Number(values['interval-ms']);
  if (!Number.isInteger(intervalMs) || intervalMs < 100)
    return usage('jobs --interval-ms must be an integer >= 100');
  if (values.db && values.config) return usage('jobs takes --config or --db, not both');
  const db = values.db ?? journalOf(values.config);
  const snapshot = (): JobView[] => readJobs(db, { since: Date.now() - sinceMs, limit });
  const json = values.json ?? false;
  if (!values.watch) {
    const jobs = snapshot();
    print(
      json
        ? [JSON.stringify({ jobs })]
        : process.stdout.isTTY
          ? tableLines(jobs, Date.now())
          : jobs.map((j) => plainLine(j, Date.now())),
    );
    return 0;
  }
  await watch(snapshot, intervalMs, json);
  return 0;
}

export async function cancelCommand(args: string[], usage: Usage): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string' }, socket: { type: 'string' }, help: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return help(CANCEL_HELP);
  if (positionals.length !== 1)
    return usage('cancel takes one JOB (a request id as one-storage jobs shows it)');
  if (values.socket && values.config) return usage('cancel takes --config or --socket, not both');
  const socket = values.socket ?? socketOf(values.config);
  const reply = await controlRequest(socket, 'cancel', [positionals[0] as string]);
  if (reply.exitCode !== 0) {
    for (const line of reply.stderr) console.error(line);
    return reply.exitCode;
  }
  console.log(`cancelled ${reply.stdout.trim()}`);
  return 0;
}

function help(text: string): number {
  console.log(text);
  return 0;
}

function print(lines: string[]): void {
  for (const line of lines) console.log(line);
}

/** The journal file: the config's when there is one (named, or installed), else the default. */
function journalOf(config: string | undefined): string {
  const file = config ?? DEFAULT_COORDINATOR_CONFIG;
  if (config === undefined && !existsSync(file)) return DEFAULT_JOURNAL;
  return loadCoordinatorConfig(file).journal;
}

function socketOf(config: string | undefined): string {
  const file = config ?? DEFAULT_COORDINATOR_CONFIG;
  if (config === undefined && !existsSync(file)) return DEFAULT_SOCKET;
  return loadCoordinatorConfig(file).socket;
}

/** Refreshes until SIGINT or SIGTERM. */
async function watch(snapshot: () => JobView[], intervalMs: number, json: boolean): Promise<void> {
  const tty = process.stdout.isTTY && !json;
  const shown = new Map<string, string>();
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let timer: NodeJS.Timeout | undefined;
  const round = (): void => {
    const jobs = snapshot();
    const now = Date.now();
    if (json) print([JSON.stringify({ at: now, jobs })]);
    else if (tty) process.stdout.write(`\x1b[H\x1b[2J${tableLines(jobs, now).join('\n')}\n`);
    else {
      // Only what changed (the elapsed time aside), oldest first: a log gets a line per report.
      for (const job of [...jobs].reverse()) {
        const key = plainLine(job, undefined);
        if (shown.get(job.requestId) !== key) print([plainLine(job, now)]);
        shown.set(job.requestId, key);
      }
    }
    timer = setTimeout(round, intervalMs);
  };
  round();
  await stopped;
  clearTimeout(timer);
}
