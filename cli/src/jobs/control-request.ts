// A control request to the coordinator over its shim socket (coordinator/src/jobs/control-request.ts):
// `cancel JOB` (one-storage cancel: the coordinator aborts the call's agent RPCs, each agent kills its
// tools and removes its partial files, the driver call fails with a one-line "cancelled" error) and
// `ping` (one-storage status: the coordinator answers, with its version and the calls it runs).
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { ShimEvent, ShimRequest, type ShimReply } from '../../../proto/gen/onestorage/shim/v1/shim.js';
import { FrameDecoder, encodeFrame } from '../../../common/src/sockets/frame.cjs';

const CONNECT_TIMEOUT_MS = 10_000;

export function controlRequest(
  socketPath: string,
  action: 'cancel' | 'ping',
  args: string[],
  timeoutMs = CONNECT_TIMEOUT_MS,
): Promise<ShimReply> {
  return sendShimRequest(
    socketPath,
    {
      ...ShimRequest.create(),
      kind: 'control',
      action,
      args,
      requestId: `${action}-${randomUUID()}`,
      pid: process.pid,
    },
    timeoutMs,
  );
}

/**
 * One request on the shim socket, answered by its reply (log lines are dropped); fails when the
 * coordinator cannot be reached, closes without a reply, or does not answer within `timeoutMs`.
 */
export function sendShimRequest(socketPath: string, req: ShimRequest, timeoutMs: number): Promise<ShimReply> {
  const request = ShimRequest.encode(req).finish();
  return new Promise((resolve, reject) => {
    const socket = connect({ path: socketPath });
    const decoder = new FrameDecoder();
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    let reply: ShimReply | undefined;
    socket.once('connect', () => socket.write(encodeFrame(request)));
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        const event = ShimEvent.decode(frame);
        if (event.reply !== undefined) reply = event.reply;
      }
      if (reply !== undefined) socket.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new Error(
          `coordinator unreachable at ${socketPath} (${err.code ?? err.message}): is one-storage-coordinator running?`,
        ),
      );
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (reply !== undefined) resolve(reply);
      else reject(new Error(`the coordinator at ${socketPath} closed the connection without an answer`));
    });
  });
}
