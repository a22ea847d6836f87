import Database from 'better-sqlite3';
import { prepareJournalFile } from './journal-file.js';
import { redactedJson, redactStrings } from './redact-secrets.js';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';
import { toCall, toStep, type CallRow, type StepRow } from './journal-rows.js';

export type Outcome = 'running' | 'success' | 'failure';
export type EndOutcome = Exclude<Outcome, 'running'>;

/** Milliseconds a writer waits for another connection's lock (e.g. the CLI reading) before failing. */
const BUSY_TIMEOUT_MS = 5000;

export interface JournalOptions {
  /** Clock in ms since the epoch; tests pass a fixed one. */
  now?: () => number;
  /**
   * Strings that must never reach the file (the oned session, its password): they are replaced in
   * args, hosts and error text before writing. Secret fields (a Receive's ticket, keys) are replaced
   * whatever their value (redact-secrets.ts).
   */
  redact?: readonly string[];
}

export interface BeginCall {
  requestId: string;
  kind: string;
  driver: string;
  action: string;
  /** The driver call's argv. Never stdin: it can hold secrets. */
  args: unknown;
  vmId?: number;
}

export interface EndCall {
  outcome: EndOutcome;
  exitCode: number;
  error?: string;
  bytes?: number;
  hosts?: readonly string[];
}

export interface BeginStep {
  /** The agent (host) the step runs on. */
  host: string;
  rpc: string;
  args: unknown;
}

export interface EndStep {
  outcome: EndOutcome;
  error?: string;
  bytes?: number;
}

/** How far a running step has got, as its agent reported it (coordinator/src/jobs/progress-poller.ts). */
export interface StepProgress {
  bytes: number;
  /** Bytes in all; 0 while unknown. */
  total: number;
  /** Bytes per second, smoothed; 0 while unknown. */
  rate: number;
  phase: string;
}

/** Who cancelled a call: the operator (one-storage cancel) or oned (it killed the driver action). */
export type CancelledBy = 'operator' | 'oned';

export interface CallRecord {
  requestId: string;
  kind: string;
  driver: string;
  action: string;
  args: unknown;
  hosts: string[] | undefined;
  vmId: number | undefined;
  startedAt: number;
  endedAt: number | undefined;
  outcome: Outcome;
  exitCode: number | undefined;
  error: string | undefined;
  bytes: number | undefined;
  cancelledBy: CancelledBy | undefined;
  /** When a restarted coordinator closed this call, which an earlier run had left running. */
  interruptedAt: number | undefined;
}

export interface StepRecord {
  id: number;
  requestId: string;
  host: string;
  rpc: string;
  args: unknown;
  startedAt: number;
  endedAt: number | undefined;
  outcome: Outcome;
  error: string | undefined;
  bytes: number | undefined;
  total: number | undefined;
  rate: number | undefined;
  phase: string | undefined;
  /** When the agent last reported progress (ms since the epoch). */
  progressAt: number | undefined;
}

/**
 * The coordinator's record of every driver call and of every agent step it made, in SQLite (WAL, so
 * the CLI can read while the daemon writes). It serves recovery (unfinished() after a restart),
 * audit and progress; the truth about disks stays with the agents and oned.
 */
export class Journal {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly secrets: readonly string[];
  private readonly stmt: Statements;

  constructor(
    readonly path: string,
    options: JournalOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.secrets = (options.redact ?? []).filter((s) => s !== '');
    try {
      prepareJournalFile(path);
      this.db = new Database(path);
    } catch (err) {
      throw new Error(`journal ${path}: cannot open: ${(err as Error).message}`, { cause: err });
    }
    this.db.pragma('journal_mode = WAL');
    // NORMAL is durable across process crashes in WAL mode; only a power loss can drop the last
    // transactions, which reconciliation with the agents covers.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    this.migrate();
    this.stmt = prepareStatements(this.db);
  }

  beginCall(call: BeginCall): void {
    try {
      this.stmt.insertCall.run({
        request_id: call.requestId,
        kind: call.kind,
        driver: call.driver,
        action: call.action,
        args: this.json(call.args),
        vm_id: call.vmId ?? null,
        started_at: this.now(),
      });
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new Error(`journal: call ${call.requestId} is already recorded`, { cause: err });
      }
      throw err;
    }
  }

  endCall(requestId: string, end: EndCall): void {
    const changed = this.stmt.endCall.run({
      request_id: requestId,
      ended_at: this.now(),
      outcome: end.outcome,
      exit_code: end.exitCode,
      error: end.error === undefined ? null : this.scrub(end.error),
      bytes: end.bytes ?? null,
      hosts: end.hosts === undefined ? null : this.json(end.hosts),
    }).changes;
    if (changed === 0) throw this.notRunning('call', requestId, this.call(requestId)?.outcome);
  }

  /** Records the start of an agent RPC made for call `requestId`; returns the step's id. */
  beginStep(requestId: string, step: BeginStep): number {
    try {
      const result = this.stmt.insertStep.run({
        request_id: requestId,
        host: step.host,
        rpc: step.rpc,
        args: this.json(step.args),
        started_at: this.now(),
      });
      return Number(result.lastInsertRowid);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
        throw new Error(`journal: step for unknown call ${requestId}`, { cause: err });
      }
      throw err;
    }
  }

  /** Records how far a running step has got (progress of long transfers); ignored once it ended. */
  stepProgress(stepId: number, p: StepProgress): void {
    this.stmt.stepProgress.run({
      id: stepId,
      bytes: p.bytes,
      total: p.total,
      rate: p.rate,
      phase: p.phase,
      progress_at: this.now(),
    });
  }

  /** Records who cancelled a running call (before it ends, as a failure). */
  markCancelled(requestId: string, by: CancelledBy): void {
    this.stmt.markCancelled.run({ request_id: requestId, cancelled_by: by });
  }

  /**
   * Closes a call an earlier run of the coordinator left running, with its steps: failures whose
   * error says what recovery found (`why`). A call that is not running is left as it is.
   */
  interruptCall(requestId: string, why: string): void {
    const at = this.now();
    const error = this.scrub(why);
    this.db.transaction(() => {
      this.stmt.interruptSteps.run({ request_id: requestId, ended_at: at, error });
      this.stmt.interruptCall.run({ request_id: requestId, ended_at: at, error });
    })();
  }

  /** The running steps of every running call, in the order they started. */
  runningSteps(): StepRecord[] {
    return (this.stmt.runningSteps.all() as StepRow[]).map(toStep);
  }

  /** The calls that started at or after `since` or are still running, newest first. */
  callsSince(since: number, limit: number): CallRecord[] {
    return (this.stmt.callsSince.all({ since, limit }) as CallRow[]).map(toCall);
  }

  endStep(stepId: number, end: EndStep): void {
    const changed = this.stmt.endStep.run({
      id: stepId,
      ended_at: this.now(),
      outcome: end.outcome,
      error: end.error === undefined ? null : this.scrub(end.error),
      bytes: end.bytes ?? null,
    }).changes;
    if (changed === 0) {
      const row = this.stmt.stepById.get(stepId) as StepRow | undefined;
      throw this.notRunning('step', String(stepId), row?.outcome);
    }
  }

  call(requestId: string): CallRecord | undefined {
    const row = this.stmt.callById.get(requestId) as CallRow | undefined;
    return row === undefined ? undefined : toCall(row);
  }

  /** The steps of one call, in the order they started. */
  steps(requestId: string): StepRecord[] {
    return (this.stmt.stepsOfCall.all(requestId) as StepRow[]).map(toStep);
  }

  /** The newest calls first. */
  recentCalls(limit: number): CallRecord[] {
    return (this.stmt.recentCalls.all(limit) as CallRow[]).map(toCall);
  }

  /** Calls still 'running': after a restart, the ones to reconcile with the agents. Oldest first. */
  unfinished(): CallRecord[] {
    return (this.stmt.unfinished.all() as CallRow[]).map(toCall);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `journal ${this.path} has schema version ${version}, newer than this coordinator's ${SCHEMA_VERSION}`,
      );
    }
    if (version === SCHEMA_VERSION) return;
    this.db.transaction(() => {
      for (const sql of MIGRATIONS.slice(version)) this.db.exec(sql);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
  }

  private json(value: unknown): string {
    return redactedJson(value, this.secrets);
  }

  private scrub(text: string): string {
    return redactStrings(text, this.secrets);
  }

  private notRunning(what: string, id: string, outcome: Outcome | undefined): Error {
    return new Error(
      outcome === undefined
        ? `journal: no ${what} ${id}`
        : `journal: ${what} ${id} already ended (${outcome})`,
    );
  }
}

type Statements = ReturnType<typeof prepareStatements>;

function prepareStatements(db: Database.Database) {
  return {
    insertCall: db.prepare(
      `INSERT INTO calls (request_id, kind, driver, action, args, vm_id, started_at, outcome)
       VALUES (@request_id, @kind, @driver, @action, @args, @vm_id, @started_at, 'running')`,
    ),
    endCall: db.prepare(
      `UPDATE calls SET ended_at = @ended_at, outcome = @outcome, exit_code = @exit_code,
         error = @error, bytes = @bytes, hosts = COALESCE(@hosts, hosts)
       WHERE request_id = @request_id AND outcome = 'running'`,
    ),
    insertStep: db.prepare(
      `INSERT INTO steps (request_id, host, rpc, args, started_at, outcome)
       VALUES (@request_id, @host, @rpc, @args, @started_at, 'running')`,
    ),
    stepProgress: db.prepare(
      `UPDATE steps SET bytes = @bytes, total = @total, rate = @rate, phase = @phase,
         progress_at = @progress_at
       WHERE id = @id AND outcome = 'running'`,
    ),
    markCancelled: db.prepare(
      `UPDATE calls SET cancelled_by = COALESCE(cancelled_by, @cancelled_by)
       WHERE request_id = @request_id AND outcome = 'running'`,
    ),
    interruptSteps: db.prepare(
      `UPDATE steps SET outcome = 'failure', ended_at = @ended_at, error = @error
       WHERE request_id = @request_id AND outcome = 'running'`,
    ),
    interruptCall: db.prepare(
      `UPDATE calls SET outcome = 'failure', ended_at = @ended_at, exit_code = 1, error = @error,
         interrupted_at = @ended_at
       WHERE request_id = @request_id AND outcome = 'running'`,
    ),
    runningSteps: db.prepare(
      `SELECT steps.* FROM steps JOIN calls USING (request_id)
       WHERE steps.outcome = 'running' AND calls.outcome = 'running' ORDER BY steps.started_at, steps.id`,
    ),
    callsSince: db.prepare(
      `SELECT * FROM calls WHERE started_at >= @since OR outcome = 'running'
       ORDER BY started_at DESC, rowid DESC LIMIT @limit`,
    ),
    endStep: db.prepare(
      `UPDATE steps SET ended_at = @ended_at, outcome = @outcome, error = @error,
         bytes = COALESCE(@bytes, bytes)
       WHERE id = @id AND outcome = 'running'`,
    ),
    stepById: db.prepare(`SELECT * FROM steps WHERE id = ?`),
    callById: db.prepare(`SELECT * FROM calls WHERE request_id = ?`),
    stepsOfCall: db.prepare(`SELECT * FROM steps WHERE request_id = ? ORDER BY started_at, id`),
    recentCalls: db.prepare(`SELECT * FROM calls ORDER BY started_at DESC, rowid DESC LIMIT ?`),
    unfinished: db.prepare(`SELECT * FROM calls WHERE outcome = 'running' ORDER BY started_at, rowid`),
  };
}
