// Asks the agents how far the long steps of running calls have got (ListJobs), every `pollMs`,
// and records it: bytes, total, a smoothed rate and the phase go to the journal (one-storage jobs
// reads them), and a progress line goes to the shim every `logIntervalMs` (oned copies INFO lines
// into the VM log). Best effort: an agent that does not answer in time is asked again next round.
import { describeProgress } from '../../../common/src/format-progress.js';
import type { Logger } from '../../../common/src/log.js';
import type { Job } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { AgentRegistry } from '../agents/agent-registry.js';
import type { RunningCalls, StepInFlight } from './running-calls.js';

export interface ProgressSettings {
  /** How often agents with long steps are asked. */
  pollMs: number;
  /** How often a progress line goes into the VM log, per call. */
  logIntervalMs: number;
}

/** Weight of the newest sample in the smoothed rate. */
const RATE_SMOOTHING = 0.3;

export interface ProgressPoller {
  /** One round now (tests; the timer calls it too). */
  poll(): Promise<void>;
  stop(): Promise<void>;
}

export function startProgressPoller(
  calls: RunningCalls,
  agents: AgentRegistry,
  settings: ProgressSettings,
  logger: Logger,
  now: () => number = Date.now,
): ProgressPoller {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let round: Promise<void> = Promise.resolve();

  const poll = async (): Promise<void> => {
    const due = calls.stepsInFlight().filter((s) => now() - s.startedAt >= settings.pollMs);
    const byHost = new Map<string, StepInFlight[]>();
    for (const s of due) byHost.set(s.host, [...(byHost.get(s.host) ?? []), s]);
    await Promise.all(
      [...byHost].map(async ([host, steps]) => {
        let jobs: Job[];
        try {
          const reply = await agents
            .get(host)
            .call(
              'listJobs',
              { requestId: '' },
              { deadlineMs: Math.max(1000, settings.pollMs), requestId: 'progress' },
            );
          jobs = reply.jobs;
        } catch (err) {
          logger.debug({ host, err: (err as Error).message }, 'progress: agent did not list its jobs');
          return;
        }
        for (const step of steps) record(step, jobs);
      }),
    );
  };

  const record = (step: StepInFlight, jobs: Job[]): void => {
    const job = jobs.find(
      (j) => j.requestId === step.requestId && j.method.toLowerCase() === step.rpc.toLowerCase(),
    );
    if (job === undefined || (job.doneBytes === 0 && job.totalBytes === 0)) return;
    const at = now();
    const last = step.last;
    let rate: number;
    if (last && at > last.at) {
      const sample = ((job.doneBytes - last.done) / (at - last.at)) * 1000;
      rate = last.rate > 0 ? last.rate * (1 - RATE_SMOOTHING) + sample * RATE_SMOOTHING : sample;
    } else {
      rate = (job.doneBytes / Math.max(1, at - step.startedAt)) * 1000;
    }
    rate = Math.max(0, rate);
    step.last = { at, done: job.doneBytes, total: job.totalBytes, rate, phase: job.phase };
    calls.recordProgress(step, { bytes: job.doneBytes, total: job.totalBytes, rate, phase: job.phase });
    const call = calls.call(step.requestId);
    if (call && at - call.lastProgressLineAt >= settings.logIntervalMs) {
      call.lastProgressLineAt = at;
      const what = job.phase || step.rpc;
      call.log(
        `INFO: ${call.label}: ${what} on ${step.host}: ${describeProgress({ done: job.doneBytes, total: job.totalBytes, rate })}`,
      );
    }
  };

  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      round = poll()
        .catch((err: unknown) => logger.warn({ err }, 'progress round failed'))
        .finally(schedule);
    }, settings.pollMs);
    timer.unref();
  };
  schedule();

  return {
    poll,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await round;
    },
  };
}
