import { StorageError, oneLine } from '../../common/src/errors.js';
import type { Logger } from '../../common/src/log.js';
import type { ShimReply, ShimRequest } from '../../proto/gen/onestorage/shim/v1/shim.js';
import type { ActionContext, OnedLookup } from './actions/action-context.js';
import { AgentOps, type StepJournal } from './agents/agent-calls.js';
import { findHandler } from './actions/dispatch.js';
import type { AgentRegistry } from './agents/agent-registry.js';
import type { CoordinatorConfig } from './config.js';

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
  logger: Logger;
}

const EXIT_FAILURE = 1;
const KINDS = new Set(['tm', 'datastore']);
/** The vm_id argument's position for the TM actions that carry one (for the journal only). */
/** Negative positions count from the end (context takes any number of files first). */
const VM_ID_POSITION: Readonly<Record<string, number>> = {
  clone: 2,
  ln: 2,
  mv: 2,
  mvds: 2,
  delete: 1,
  cpds: 3,
  resize: 2,
  mkimage: 3,
  mkswap: 2,
  context: -2,
  snap_create: 2,
  snap_revert: 2,
  snap_delete: 2,
  premigrate: 3,
  postmigrate: 3,
  failmigrate: 3,
};

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
  const vmPos = VM_ID_POSITION[action.split('.')[0] ?? ''];
  const vmArg = vmPos === undefined ? undefined : req.args.at(vmPos);
  const vmId = vmArg !== undefined && /^\d+$/.test(vmArg) ? Number(vmArg) : undefined;
  deps.journal.beginCall({
    requestId: req.requestId,
    kind: req.kind,
    driver: req.driver,
    action,
    args: req.args,
    ...(vmId === undefined ? {} : { vmId }),
  });
  const ops = new AgentOps(deps.agents, deps.journal, req.requestId, deps.config.deadlines, signal, logger);
  const started = Date.now();
  try {
    const handler = KINDS.has(req.kind) ? findHandler(req.kind, req.driver, action) : undefined;
    if (!handler) {
      throw new StorageError(
        'UNSUPPORTED_ACTION',
        `${req.kind}/${req.driver}/${action} is not implemented by one-storage`,
      );
    }
    const ctx: ActionContext = {
      requestId: req.requestId,
      kind: req.kind as 'tm' | 'datastore',
      driver: req.driver,
      action,
      args: req.args,
      stdin: req.stdin,
      signal,
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
    logger.info({ args: req.args, ms: Date.now() - started, bytes: ops.bytesMoved }, 'driver call succeeded');
    return { stdout: result.stdout, stderr: [], exitCode: 0 };
  } catch (err) {
    const e =
      err instanceof StorageError
        ? err
        : new StorageError(
            'INTERNAL',
            `internal error in the coordinator (request ${req.requestId}): see its log`,
          );
    if (!(err instanceof StorageError)) logger.error({ err }, 'unexpected error');
    const line = `${action} failed: ${e.message}`;
    deps.journal.endCall(req.requestId, {
      outcome: 'failure',
      exitCode: EXIT_FAILURE,
      error: line,
      bytes: ops.bytesMoved,
      hosts: [...ops.hosts],
    });
    logger.warn(
      { args: req.args, ms: Date.now() - started, reason: e.reason, error: e.message },
      'driver call failed',
    );
    return {
      stdout: '',
      stderr: [`ERROR: ${action}: ${e.reason} (request ${req.requestId})`, line],
      exitCode: EXIT_FAILURE,
    };
  }
}
