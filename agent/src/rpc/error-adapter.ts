import * as grpc from '@grpc/grpc-js';
import { REASON_METADATA_KEY, StorageError, type Reason } from '../../../common/src/errors.js';
import type { Logger } from '../../../common/src/log.js';
import type { AgentContext, CallContext, Handler } from './context.js';
import { requestIdOf } from './request-id.js';

/**
 * Turns a handler into a grpc-js unary handler: the call's cancellation becomes the handler's abort
 * signal (so a cancelled call kills its qemu-img), and whatever the handler throws becomes one
 * status. A StorageError keeps its code and message and adds `x-reason` to the trailing metadata;
 * anything else is a bug or an unforeseen failure: INTERNAL with a generic message, stack in the log.
 */
export function adaptHandler<Req, Res>(
  agent: AgentContext,
  logger: Logger,
  method: string,
  handler: Handler<Req, Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const controller = new AbortController();
    // A deadline passed or the caller went away: stop the work (runTool kills its child process).
    let callerGone = false;
    call.on('cancelled', () => {
      callerGone = true;
      controller.abort();
    });
    const requestId = requestIdOf(call.metadata);
    const log = logger.child({ method, ...(requestId ? { requestId } : {}) });
    // Every call is listed while it runs (ListJobs) and can be aborted by request id (CancelJobs).
    const job = agent.jobs.start(requestId ?? '', method, controller);
    const ctx: CallContext = { signal: controller.signal, log, progress: job.progress };
    let running: Promise<Res>;
    try {
      running = handler(agent, call.request, ctx);
    } catch (err) {
      running = Promise.reject(err);
    }
    running.then(
      (response) => {
        job.end();
        callback(null, response);
      },
      (err: unknown) => {
        job.end();
        // Whatever the aborted work threw (a killed tool, a closed socket), a call stopped by
        // CancelJobs fails as cancelled.
        // Stopped because its caller went away (a coordinator that died) or its deadline passed:
        // whatever the abort made the work throw is that, not a bug.
        const cause = job.cancelledByRequest
          ? new StorageError('CANCELLED', `${agent.name}: ${method} was cancelled by request`, { cause: err })
          : callerGone && !(err instanceof StorageError)
            ? new StorageError(
                'CANCELLED',
                `${agent.name}: ${method} stopped: its caller went away or its deadline passed`,
                { cause: err },
              )
            : err;
        callback(toServiceError(cause, agent.name, log));
      },
    );
  };
}

/** The status a thrown value becomes (exported for tests). */
export function toServiceError(err: unknown, agentName: string, log: Logger): grpc.ServerErrorResponse {
  if (err instanceof StorageError) {
    log.debug({ reason: err.reason, msg: err.message }, 'call failed');
    return statusWith(err.code, err.message, err.reason);
  }
  log.error({ err }, 'unexpected error');
  return statusWith(grpc.status.INTERNAL, `internal error in agent ${agentName}; see its log`, 'INTERNAL');
}

function statusWith(code: grpc.status, details: string, reason: Reason): grpc.ServerErrorResponse {
  const metadata = new grpc.Metadata();
  metadata.set(REASON_METADATA_KEY, reason);
  return Object.assign(new Error(details), { code, details, metadata });
}
