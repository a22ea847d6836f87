// Requests on the shim socket that are not driver calls: kind "control", sent by the one-storage
// CLI on the front-end (whoever may run driver actions through the socket may cancel them). Only
// "cancel <job>" and "ping" exist; they are answered at once and never journaled as driver calls.
import type { Logger } from '../../../common/src/log.js';
import type { ShimReply, ShimRequest } from '../../../proto/gen/onestorage/shim/v1/shim.js';
import type { RunningCalls } from './running-calls.js';

export const CONTROL_KIND = 'control';

export function handleControlRequest(
  req: ShimRequest,
  calls: RunningCalls,
  version: string,
  logger: Logger,
): ShimReply {
  // one-storage status: proof that the daemon handles requests, not only that its socket accepts.
  if (req.action === 'ping' && req.args.length === 0) {
    return { stdout: `${JSON.stringify({ version, running: calls.size })}\n`, stderr: [], exitCode: 0 };
  }
  const [job, ...extra] = req.args;
  if (req.action !== 'cancel' || job === undefined || extra.length > 0) {
    return failure(`one-storage: unknown control request "${req.action}" (expected: cancel JOB, or ping)`);
  }
  try {
    const requestId = calls.cancel(job);
    logger.info({ requestId, by: 'operator', pid: req.pid }, 'driver call cancelled');
    return { stdout: `${requestId}\n`, stderr: [], exitCode: 0 };
  } catch (err) {
    return failure(`one-storage cancel: ${(err as Error).message}`);
  }
}

function failure(line: string): ShimReply {
  return { stdout: '', stderr: [line], exitCode: 1 };
}
