// One call over the coordinator's socket (shim.proto): send the request frame, pass each log event on
// as it arrives, resolve with the reply. Transport failures become a ShimTransportError whose message
// is the single line oned will show as the action's error.
import { connect } from 'node:net';
import type { ShimReply } from '../../proto/gen/onestorage/shim/v1/shim.js';
import { FrameDecoder } from '../../common/src/sockets/frame.cjs';
import { decodeShimEvent } from './shim-codec.cjs';

/**
 * How long to wait for the socket to accept. A UNIX socket accepts at once unless the coordinator is
 * wedged with a full backlog; failing then lets oned report it instead of hanging the VM operation.
 */
export const CONNECT_TIMEOUT_MS = 10_000;

/** Prefix of every line the shim itself writes, so an operator knows where it came from. */
const MESSAGE_PREFIX = 'one-storage:';

/** The call did not produce a reply; `message` is one line for oned. */
export class ShimTransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShimTransportError';
  }
}

export interface CallCoordinatorOptions {
  socketPath: string;
  /** The ShimRequest, already framed. */
  frame: Uint8Array;
  /** For error messages, so a failed call can be found in the coordinator's log. */
  requestId: string;
  onLog: (line: string) => void;
}

export function callCoordinator(opts: CallCoordinatorOptions): Promise<ShimReply> {
  const { socketPath, requestId } = opts;
  return new Promise((resolve, reject) => {
    const socket = connect({ path: socketPath });
    const decoder = new FrameDecoder();
    let connected = false;
    let settled = false;
    let lastError: NodeJS.ErrnoException | undefined;

    const timer = setTimeout(() => {
      const err: NodeJS.ErrnoException = new Error('timed out connecting');
      err.code = 'ETIMEDOUT';
      socket.destroy(err);
    }, CONNECT_TIMEOUT_MS);

    const settle = (outcome: { reply: ShimReply } | { error: ShimTransportError }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if ('reply' in outcome) resolve(outcome.reply);
      else reject(outcome.error);
    };

    socket.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      socket.write(opts.frame);
    });

    socket.on('data', (chunk: Buffer) => {
      let reply: ShimReply | undefined;
      try {
        for (const frame of decoder.push(chunk)) {
          const event = decodeShimEvent(frame);
          // Log lines go out as they arrive: oned shows progress of long copies while they run.
          if (event.log !== undefined) opts.onLog(event.log.line);
          if (event.reply !== undefined) {
            reply = event.reply;
            break;
          }
        }
      } catch (err) {
        const reason = (err as Error).message;
        settle({
          error: new ShimTransportError(
            `${MESSAGE_PREFIX} unreadable reply from the coordinator at ${socketPath} (request ${requestId}): ${reason}`,
          ),
        });
        return;
      }
      if (reply !== undefined) settle({ reply });
    });

    socket.on('error', (err: NodeJS.ErrnoException) => {
      lastError = err;
    });

    socket.on('close', () => {
      const code = lastError?.code ?? lastError?.message;
      const message = connected
        ? `${MESSAGE_PREFIX} the coordinator at ${socketPath} closed the connection before replying ` +
          `(${code ?? 'EOF'}, request ${requestId}): see its log`
        : `${MESSAGE_PREFIX} coordinator unreachable at ${socketPath} (${code ?? 'closed'}): ` +
          'is one-storage-coordinator running?';
      settle({ error: new ShimTransportError(message) });
    });
  });
}
