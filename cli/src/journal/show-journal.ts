import { existsSync } from 'node:fs';
import { Journal, type CallRecord, type StepRecord } from '../../../coordinator/src/journal/journal.js';
import { MIB } from '../../../common/src/units.js';

/** Where the coordinator keeps its journal unless configured otherwise. */
export const DEFAULT_JOURNAL = '/var/lib/one-storage/journal.db';

function formatCall(c: CallRecord): string {
  const when = new Date(c.startedAt).toISOString();
  const ms = c.endedAt === undefined ? 'running' : `${c.endedAt - c.startedAt} ms`;
  const bytes = c.bytes ? ` ${(c.bytes / MIB).toFixed(1)} MiB` : '';
  const args = Array.isArray(c.args) ? (c.args as string[]).join(' ') : JSON.stringify(c.args);
  const error = c.error ? `  ${c.error}` : '';
  return `${when} ${c.requestId} ${c.kind}/${c.driver}/${c.action} ${args} → ${c.outcome} (${ms}${bytes})${error}`;
}

function formatStep(s: StepRecord): string {
  const ms = s.endedAt === undefined ? 'running' : `${s.endedAt - s.startedAt} ms`;
  const bytes = s.bytes ? ` ${(s.bytes / 1048576).toFixed(1)} MiB` : '';
  return `    ${s.host} ${s.rpc} → ${s.outcome} (${ms}${bytes})${s.error ? `  ${s.error}` : ''}`;
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
