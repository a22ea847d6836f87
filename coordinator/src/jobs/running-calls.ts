// The driver calls the coordinator is running now, each with its cancel and its agent steps in
// flight. AgentOps records its steps through it (it is the StepJournal it is given), so the progress
// poller knows which agents to ask and which journal row each answer belongs to; `one-storage
// cancel` and oned's own cancel (the shim killed) both end up in cancel().
import type { CancelledBy, StepProgress } from '../journal/journal.js';
import type { StepJournal } from '../agents/agent-calls.js';

/** The journal calls made here (the Journal class implements them). */
export interface ProgressJournal extends StepJournal {
  stepProgress(stepId: number, p: StepProgress): void;
  markCancelled(requestId: string, by: CancelledBy): void;
}

export interface CallInfo {
  requestId: string;
  /** "tm/grpc/clone": how the call is named in log lines. */
  label: string;
  vmId?: number;
}

/** An agent RPC in flight for a running call. */
export interface StepInFlight {
  id: number;
  requestId: string;
  host: string;
  rpc: string;
  startedAt: number;
  /** The last progress reported, with when it was sampled (for the rate). */
  last?: { at: number; done: number; total: number; rate: number; phase: string };
}

export interface CallInFlight extends CallInfo {
  startedAt: number;
  /** Sends a line to the shim now (oned copies `INFO:` lines into the VM log). */
  log(line: string): void;
  /** When the last progress line went to the shim (ms since the epoch). */
  lastProgressLineAt: number;
}

export interface RunningCall {
  /** Aborts when the shim goes away, when the coordinator stops, or on cancel(). */
  readonly signal: AbortSignal;
  /** Who cancelled the call, when someone did. */
  cancelledBy(): CancelledBy | undefined;
  end(): void;
}

/** An abort reason: the operator's cancel. */
export class OperatorCancelError extends Error {
  constructor() {
    super('cancelled by the operator (one-storage cancel)');
    this.name = 'OperatorCancelError';
  }
}

/** Shortest prefix of a request id `one-storage cancel` accepts (jobs shows the first 8 characters). */
export const MIN_JOB_PREFIX = 8;

export class RunningCalls implements StepJournal {
  private readonly calls = new Map<string, { call: CallInFlight; controller: AbortController }>();
  private readonly steps = new Map<number, StepInFlight>();

  constructor(
    private readonly journal: ProgressJournal,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Registers a driver call. `shimSignal` aborts when the shim disconnects (a ShimDisconnectedError
   * reason: oned's cancel) or the server stops; the returned signal aborts on either or on cancel().
   */
  begin(
    info: CallInfo,
    log: (line: string) => void,
    shimSignal: AbortSignal,
    isOnedCancel: (reason: unknown) => boolean,
  ): RunningCall {
    const controller = new AbortController();
    const entry = {
      call: { ...info, startedAt: this.now(), log, lastProgressLineAt: this.now() },
      controller,
    };
    this.calls.set(info.requestId, entry);
    const signal = AbortSignal.any([shimSignal, controller.signal]);
    const onShimAbort = (): void => {
      if (isOnedCancel(shimSignal.reason)) this.journal.markCancelled(info.requestId, 'oned');
    };
    shimSignal.addEventListener('abort', onShimAbort, { once: true });
    return {
      signal,
      cancelledBy: () => {
        if (controller.signal.aborted) return 'operator';
        if (shimSignal.aborted && isOnedCancel(shimSignal.reason)) return 'oned';
        return undefined;
      },
      end: () => {
        shimSignal.removeEventListener('abort', onShimAbort);
        this.calls.delete(info.requestId);
      },
    };
  }

  /**
   * Cancels the running call whose request id is `job` or starts with it (at least MIN_JOB_PREFIX
   * characters); returns its full request id. Throws a one-line error when none or several match.
   */
  cancel(job: string): string {
    const matches = [...this.calls.keys()].filter(
      (id) => id === job || (job.length >= MIN_JOB_PREFIX && id.startsWith(job)),
    );
    if (matches.length === 0) {
      throw new Error(
        job.length < MIN_JOB_PREFIX
          ? `no running job is named "${job}" (give the request id or its first ${MIN_JOB_PREFIX} characters or more)`
          : `no running job "${job}" (one-storage jobs lists them; a finished job cannot be cancelled)`,
      );
    }
    if (matches.length > 1) throw new Error(`"${job}" names several running jobs: ${matches.join(', ')}`);
    const requestId = matches[0] as string;
    const entry = this.calls.get(requestId);
    if (entry && !entry.controller.signal.aborted) {
      this.journal.markCancelled(requestId, 'operator');
      entry.controller.abort(new OperatorCancelError());
    }
    return requestId;
  }

  beginStep(requestId: string, step: { host: string; rpc: string; args: unknown }): number {
    const id = this.journal.beginStep(requestId, step);
    this.steps.set(id, { id, requestId, host: step.host, rpc: step.rpc, startedAt: this.now() });
    return id;
  }

  endStep(stepId: number, end: { outcome: 'success' | 'failure'; error?: string; bytes?: number }): void {
    this.steps.delete(stepId);
    this.journal.endStep(stepId, end);
  }

  /** Steps in flight, oldest first. */
  stepsInFlight(): StepInFlight[] {
    return [...this.steps.values()];
  }

  call(requestId: string): CallInFlight | undefined {
    return this.calls.get(requestId)?.call;
  }

  /** Records a step's progress in the journal (unless it ended meanwhile). */
  recordProgress(step: StepInFlight, p: StepProgress): void {
    if (!this.steps.has(step.id)) return;
    this.journal.stepProgress(step.id, p);
  }

  get size(): number {
    return this.calls.size;
  }
}
