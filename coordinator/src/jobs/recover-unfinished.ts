// What a restarted coordinator does with the driver calls an earlier run left running in its
// journal (it was killed, or its host went down). oned already saw each of them fail (the shim's
// connection to the coordinator closed), so none is finished here: each agent the call reached is
// asked whether it is still working on it (ListJobs) and told to stop (CancelJobs: its tools are
// killed and its partial files removed, so oned's retry finds no half-written file), and the call is
// closed in the journal with what was found; `one-storage jobs` shows it as interrupted. A VM
// directory move stopped between its copy and its delete is resolved so one copy remains
// (resolve-half-move.ts).
import { oneLine } from '../../../common/src/errors.js';
import type { Logger } from '../../../common/src/log.js';
import type { AgentRegistry } from '../agents/agent-registry.js';
import type { CallRecord, Journal } from '../journal/journal.js';
import { resolveHalfMove } from './resolve-half-move.js';

export interface RecoveredCall {
  requestId: string;
  /** What recovery found, as written into the call's error. */
  error: string;
}

export async function recoverUnfinished(
  journal: Journal,
  agents: AgentRegistry,
  deadlineMs: number,
  logger: Logger,
  /** The calls to recover: read before the coordinator serves new calls, which are never among them. */
  leftovers: readonly CallRecord[] = journal.unfinished(),
): Promise<RecoveredCall[]> {
  const recovered: RecoveredCall[] = [];
  for (const call of leftovers) {
    const steps = journal.steps(call.requestId);
    const hosts = [...new Set(steps.map((s) => s.host))];
    const found = await Promise.all(
      hosts.map((host) => stopLeftovers(agents, host, call.requestId, deadlineMs)),
    );
    found.push(await resolveHalfMove(call, steps, agents, deadlineMs));
    const what = found.filter((f) => f !== undefined);
    const error =
      `${call.action} interrupted: the coordinator stopped while it ran (oned saw it fail; retry the action); ` +
      (what.length > 0 ? `at restart: ${what.join('; ')}` : 'at restart no agent was still working on it');
    journal.interruptCall(call.requestId, error);
    logger.warn({ requestId: call.requestId, action: call.action, hosts }, error);
    recovered.push({ requestId: call.requestId, error });
  }
  return recovered;
}

/** Stops what `host` still runs for `requestId`; says what it did, or nothing when there was nothing. */
async function stopLeftovers(
  agents: AgentRegistry,
  host: string,
  requestId: string,
  deadlineMs: number,
): Promise<string | undefined> {
  const opts = { deadlineMs, requestId: `recover-${requestId}` };
  try {
    const client = agents.get(host);
    const { jobs } = await client.call('listJobs', { requestId }, opts);
    if (jobs.length === 0) return undefined;
    const { cancelled } = await client.call('cancelJobs', { requestId }, opts);
    const methods = [...new Set(jobs.map((j) => j.method))].join(', ');
    return `${host} was still running ${methods}: cancelled ${cancelled}`;
  } catch (err) {
    return `${host} not checked (${oneLine(err instanceof Error ? err.message : String(err))})`;
  }
}
