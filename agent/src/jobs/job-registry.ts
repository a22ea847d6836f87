// The calls an agent is running now, each with its abort controller and its progress: ListJobs
// reads them, CancelJobs aborts those of one request id. Every RPC goes through adaptHandler
// (agent/src/rpc/error-adapter.ts), which registers it here for as long as it runs.
import type { Job } from '../../../proto/gen/onestorage/agent/v1/agent.js';

/** What a handler reports while it works (CallContext.progress). */
export interface Progress {
  /** Bytes done so far. */
  done: number;
  /** Bytes in all; 0 while unknown. */
  total?: number;
  /** What the call is doing now, e.g. "receiving", "converting". */
  phase?: string;
}

export interface RunningJob {
  /** Records progress: cheap (a few field writes), so callers may report per chunk. */
  progress(p: Progress): void;
  /** Whether CancelJobs (not the caller's own cancel or deadline) aborted this call. */
  readonly cancelledByRequest: boolean;
  /** Takes the call off the list; called once, when it has replied. */
  end(): void;
}

interface Entry {
  requestId: string;
  method: string;
  startedAtMs: number;
  done: number;
  total: number;
  phase: string;
  controller: AbortController;
  cancelled: boolean;
}

export class JobRegistry {
  private readonly running = new Set<Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  start(requestId: string, method: string, controller: AbortController): RunningJob {
    const entry: Entry = {
      requestId,
      method,
      startedAtMs: this.now(),
      done: 0,
      total: 0,
      phase: '',
      controller,
      cancelled: false,
    };
    this.running.add(entry);
    return {
      progress: (p) => {
        entry.done = Math.max(0, Math.floor(p.done));
        if (p.total !== undefined) entry.total = Math.max(0, Math.floor(p.total));
        if (p.phase !== undefined) entry.phase = p.phase;
      },
      get cancelledByRequest() {
        return entry.cancelled;
      },
      end: () => {
        this.running.delete(entry);
      },
    };
  }

  /** The running calls (of `requestId` when not empty), oldest first. */
  list(requestId = ''): Job[] {
    const jobs: Job[] = [];
    for (const e of this.running) {
      if (requestId !== '' && e.requestId !== requestId) continue;
      jobs.push({
        requestId: e.requestId,
        method: e.method,
        startedAtMs: e.startedAtMs,
        doneBytes: e.done,
        totalBytes: e.total,
        phase: e.phase,
      });
    }
    return jobs;
  }

  /** Aborts every running call of `requestId`; returns how many. An empty id matches nothing. */
  cancel(requestId: string, reason: string): number {
    if (requestId === '') return 0;
    let count = 0;
    for (const e of this.running) {
      if (e.requestId !== requestId || e.controller.signal.aborted) continue;
      e.cancelled = true;
      e.controller.abort(new Error(reason));
      count++;
    }
    return count;
  }

  get size(): number {
    return this.running.size;
  }
}
