import type { ShimKind } from '../../common/src/drivers/driver-actions.js';
import { StorageError, oneLine } from '../../common/src/errors.js';
import type { Logger } from '../../common/src/log.js';
import type { ShimReply, ShimRequest } from '../../proto/gen/onestorage/shim/v1/shim.js';
import type { ActionContext, OnedLookup } from './actions/action-context.js';
import { AgentOps, type StepJournal } from './agents/agent-calls.js';
import type { ActionHandler } from './actions/action-context.js';
import { findHandler } from './actions/dispatch.js';
import { argumentIndex } from './actions/parse-action-args.js';
import type { AgentRegistry } from './agents/agent-registry.js';
import type { CoordinatorConfig } from './config.js';
import type { RunningCalls } from './jobs/running-calls.js';
import { ShimDisconnectedError } from './shim-server/shim-call.js';
import type { CoordinatorMetrics } from './metrics/coordinator-metrics.js';

/** The journal calls made per driver call (the Journal class implements them). */
export interface CallJournal extends StepJournal {
  beginCall(call: {
    requestId: string;
    kind: string;
    driver: string;
    action: string;
    args: readonly string[];
    vmId?: number;
  }): void;
  endCall(
    requestId: string,
    end: {
      outcome: 'success' | 'failure';
      exitCode: number;
      error?: string;
      bytes?: number;
      hosts?: string[];
    },
  ): void;
}

export interface Deps {
  config: Readonly<CoordinatorConfig>;
  agents: AgentRegistry;
  oned: OnedLookup;
  journal: CallJournal;
  /** The calls in flight: cancel, and the steps the progress poller asks the agents about. */
  calls: RunningCalls;
  logger: Logger;
  /** Absent: no metrics configured. */
  metrics?: CoordinatorMetrics;
  /**
   * While a restarted coordinator recovers what an earlier run left for VM `vmId`, the promise
   * its new calls wait for (coordinator/src/jobs/recover-unfinished.ts); undefined: nothing to wait for.
   */
  afterRecoveryOf?: (vmId: number) => Promise<void> | undefined;
}

const EXIT_FAILURE = 1;
const KINDS = new Set(['tm', 'datastore']);

/**
 * Turns one shim request into a reply with oned's conventions: stdout is the result; a failure is
 * an `ERROR:` log line plus exactly one human line (what failed, where, why) and exit 1.
 */
export async function handleDriverCall(
  deps: Deps,
  req: ShimRequest,
  log: (line: string) => void,
  signal: AbortSignal,
): Promise<ShimReply> {
  const action = req.action.toLowerCase();
  const logger = deps.logger.child({ requestId: req.requestId, kind: req.kind, driver: req.driver, action });
  const handler = KINDS.has(req.kind) ? findHandler(req.kind, req.driver, action) : undefined;
  const vmId = handler && journalVmId(handler, req.args);
  const recovering = vmId === undefined ? undefined : deps.afterRecoveryOf?.(vmId);
  if (recovering) await recovering;
  deps.journal.beginCall({
    requestId: req.requestId,
    kind: req.kind,
    driver: req.driver,
    action,
    args: req.args,
    ...(vmId === undefined ? {} : { vmId }),
  });
  const running = deps.calls.begin(
    {
      requestId: req.requestId,
      label: `${req.kind}/${req.driver}/${action}`,
      ...(vmId === undefined ? {} : { vmId }),
    },
    log,
    signal,
    (reason) => reason instanceof ShimDisconnectedError,
  );
  const ops = new AgentOps(
    deps.agents,
    deps.calls,
    req.requestId,
    deps.config.deadlines,
    running.signal,
    logger,
  );
  ops.metrics = deps.metrics;
  const timer = deps.metrics?.driverCallStarted(req.kind, req.driver, action, handler !== undefined);
  const started = performance.now();
  try {
    if (!handler) {
      throw new StorageError(
        'UNSUPPORTED_ACTION',
        `${req.kind}/${req.driver}/${action} is not implemented by one-storage`,
      );
    }
    const ctx: ActionContext = {
      requestId: req.requestId,
      kind: req.kind as ShimKind,
      driver: req.driver,
      action,
      args: req.args,
      stdin: req.stdin,
      signal: running.signal,
      info: (message) => log(`INFO: ${oneLine(message)}`),
      ops,
      agents: deps.agents,
      oned: deps.oned,
      config: deps.config,
      logger,
    };
    const result = await handler(ctx);
    deps.journal.endCall(req.requestId, {
      outcome: 'success',
      exitCode: 0,
      bytes: ops.bytesMoved,
      hosts: [...ops.hosts],
    });
    logger.info(
      { args: req.args, ms: Math.round(performance.now() - started), bytes: ops.bytesMoved },
      'driver call succeeded',
    );
    timer?.end('success');
    return { stdout: result.stdout, stderr: [], exitCode: 0 };
  } catch (err) {
    const cancelledBy = running.cancelledBy();
    const e =
      cancelledBy !== undefined
        ? new StorageError('CANCELLED', cancelMessage(cancelledBy), { cause: err })
        : err instanceof StorageError
          ? err
          : new StorageError(
              'INTERNAL',
              `internal error in the coordinator (request ${req.requestId}): see its log`,
            );
    if (!(err instanceof StorageError) && cancelledBy === undefined)
      logger.error({ err }, 'unexpected error');
    const line = boundedLine(`${action} failed: ${e.message}`, req.requestId);
    deps.journal.endCall(req.requestId, {
      outcome: 'failure',
      exitCode: EXIT_FAILURE,
      error: line,
      bytes: ops.bytesMoved,
      hosts: [...ops.hosts],
    });
    logger.warn(
      { args: req.args, ms: Math.round(performance.now() - started), reason: e.reason, error: e.message },
      'driver call failed',
    );
    timer?.end('failure', e.reason);
    return {
      stdout: '',
      stderr: [`ERROR: ${action}: ${e.reason} (request ${req.requestId})`, line],
      exitCode: EXIT_FAILURE,
    };
  } finally {
    running.end();
  }
}

function cancelMessage(by: 'operator' | 'oned'): string {
  return by === 'operator'
    ? 'cancelled by the operator (one-storage cancel)'
    : 'cancelled: oned stopped the driver action';
}

/** The VM id the journal files a call under: the declared vm_id argument, when it is a number. */
function journalVmId(handler: ActionHandler, args: readonly string[]): number | undefined {
  const at = argumentIndex(handler.signature, 'vm_id', args.length);
  const word = at === undefined ? undefined : args[at];
  return word !== undefined && /^\d+$/.test(word) ? Number(word) : undefined;
}

/**
 * The longest error line oned gets: the line becomes the VM's error message, and an argument of
 * many kilobytes echoed back in it helps no one. The whole message stays in the coordinator's log.
 */
export const MAX_ERROR_LINE = 1_000;

function boundedLine(line: string, requestId: string): string {
  if (line.length <= MAX_ERROR_LINE) return line;
  const tail = ` … (cut; the whole message is in the coordinator's log, request ${requestId})`;
  return `${line.slice(0, MAX_ERROR_LINE - tail.length)}${tail}`;
}
