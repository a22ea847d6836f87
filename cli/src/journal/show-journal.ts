import { existsSync } from 'node:fs';
import { Journal, type CallRecord, type StepRecord } from '../../../coordinator/src/journal/journal.js';
import { MIB } from '../../../common/src/units.js';

/** Where the coordinator keeps its journal unless configured otherwise. */
export const DEFAULT_JOURNAL = '/var/lib/one-storage/journal.db';

/** "<outcome> (<ms> ms[ <MiB> MiB])[  <error>]" of a call or a step. */
function formatOutcome(r: CallRecord | StepRecord): string {
  const ms = r.endedAt === undefined ? 'running' : `${r.endedAt - r.startedAt} ms`;
  const bytes = r.bytes ? ` ${(r.bytes / MIB).toFixed(1)} MiB` : '';
  return `${r.outcome} (${ms}${bytes})${r.error ? `  ${r.error}` : ''}`;
}

function formatCall(c: CallRecord): string {
  const when = new Date(c.startedAt).toISOString();
  const args = Array.isArray(c.args) ? (c.args as string[]).join(' ') : JSON.stringify(c.args);
  return `${when} ${c.requestId} ${c.kind}/${c.driver}/${c.action} ${args} → ${formatOutcome(c)}`;
}

function formatStep(s: StepRecord): string {
  return `    ${s.host} ${s.rpc} → ${formatOutcome(s)}`;
}

/**
 * `one-storage journal`: the last driver calls the coordinator handled (newest first), or one call
 * with every agent RPC it made. Reads the SQLite file while the daemon writes (WAL mode).
 */
export function showJournal(opts: { db: string; limit: number; request?: string; json: boolean }): string[] {
  if (!existsSync(opts.db))
    throw new Error(`journal ${opts.db} does not exist (see the coordinator's "journal" setting)`);
  const journal = new Journal(opts.db);
  try {
    if (opts.request) {
      const call = journal.call(opts.request);
      if (!call) throw new Error(`journal ${opts.db} has no request ${opts.request}`);
      const steps = journal.steps(opts.request);
      return opts.json ? [JSON.stringify({ call, steps })] : [formatCall(call), ...steps.map(formatStep)];
    }
    const calls = journal.recentCalls(opts.limit);
    return opts.json ? calls.map((c) => JSON.stringify(c)) : calls.map(formatCall);
  } finally {
    journal.close();
  }
}
