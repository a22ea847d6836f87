// The jobs `one-storage jobs` shows, read from the coordinator's journal (SQLite in WAL mode, so
// this reads while the daemon writes): every call still running, with the progress its agents last
// reported for each step in flight, and the calls that ended recently.
import { existsSync } from 'node:fs';
import { Journal, type CallRecord } from '../../../coordinator/src/journal/journal.js';

export type JobState = 'running' | 'success' | 'failure' | 'cancelled' | 'interrupted';

export interface StepView {
  host: string;
  rpc: string;
  phase: string;
  done: number;
  /** 0 while unknown. */
  total: number;
  /** Bytes per second; 0 while unknown. */
  rate: number;
  startedAt: number;
  /** When the agent last reported (ms since the epoch); undefined before the first report. */
  progressAt: number | undefined;
}

export interface JobView {
  requestId: string;
  /** "tm/grpc/clone". */
  action: string;
  vmId: number | undefined;
  state: JobState;
  startedAt: number;
  endedAt: number | undefined;
  hosts: string[];
  bytes: number | undefined;
  error: string | undefined;
  cancelledBy: string | undefined;
  /** The steps running now (only for a running job). */
  steps: StepView[];
}

export function readJobs(db: string, opts: { since: number; limit: number }): JobView[] {
  if (!existsSync(db))
    throw new Error(`journal ${db} does not exist (see the coordinator's "journal" setting)`);
  const journal = new Journal(db);
  try {
    return journal.callsSince(opts.since, opts.limit).map((call) => toView(journal, call));
  } finally {
    journal.close();
  }
}

function stateOf(call: CallRecord): JobState {
  if (call.outcome !== 'failure') return call.outcome;
  if (call.cancelledBy !== undefined) return 'cancelled';
  return call.interruptedAt !== undefined ? 'interrupted' : 'failure';
}

function toView(journal: Journal, call: CallRecord): JobView {
  const steps =
    call.outcome === 'running'
      ? journal
          .steps(call.requestId)
          .filter((s) => s.outcome === 'running')
          .map((s) => ({
            host: s.host,
            rpc: s.rpc,
            phase: s.phase ?? '',
            done: s.bytes ?? 0,
            total: s.total ?? 0,
            rate: s.rate ?? 0,
            startedAt: s.startedAt,
            progressAt: s.progressAt,
          }))
      : [];
  return {
    requestId: call.requestId,
    action: `${call.kind}/${call.driver}/${call.action}`,
    vmId: call.vmId,
    state: stateOf(call),
    startedAt: call.startedAt,
    endedAt: call.endedAt,
    hosts: call.hosts ?? [...new Set(steps.map((s) => s.host))],
    bytes: call.bytes,
    error: call.error,
    cancelledBy: call.cancelledBy,
    steps,
  };
}
