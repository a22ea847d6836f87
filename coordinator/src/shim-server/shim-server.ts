// The coordinator's end of the shim socket (proto/onestorage/shim/v1/shim.proto): one connection is
// one driver call. Decode the request, run the handler, stream its log lines, send the reply, close.
// Whatever goes wrong, the shim gets a reply it can turn into oned's one-line error when the
// connection is still there to carry it.
import { createServer, type Server, type Socket } from 'node:net';
import { ShimEvent, type ShimReply, type ShimRequest } from '../../../proto/gen/onestorage/shim/v1/shim.js';
import { removeStaleSocket } from '../../../common/src/sockets/remove-stale-socket.js';
import { GROUP_SOCKET_MODE } from '../../../common/src/sockets/socket-mode.js';
import { frame, MAX_REQUEST_FRAME_BYTES } from './request-frame.js';
import { restrictedListen } from './restricted-listen.js';
import { Call, EXIT_FAILURE, type ReadLimits } from './shim-call.js';

/** rw for the owner and group: oned runs the shims as oneadmin, a member of the socket's group. */
export const DEFAULT_SOCKET_MODE = GROUP_SOCKET_MODE;
/**
 * A shim reads its stdin before connecting and sends the request at once, so a connection that has
 * not delivered a whole request this long after it was accepted is stuck or not a shim. A deadline,
 * not an idle timer: a client trickling a byte now and then is dropped all the same.
 */
export const REQUEST_READ_TIMEOUT_MS = 30_000;
/**
 * Connections accepted but still sending their request. oned runs a few driver actions at a time
 * (its driver's -t threads, 15 by default) and each shim sends its request at once, so more than this
 * are stuck or hostile; beyond it a new connection gets one line and is closed. With
 * MAX_REQUEST_FRAME_BYTES this bounds what the server buffers (docs/security.md).
 */
export const MAX_READING_CONNECTIONS = 64;
/** On close(), how long aborted handlers get to reply before their connections are cut. */
export const CLOSE_GRACE_MS = 5_000;

export type ShimHandler = (
  req: ShimRequest,
  log: (line: string) => void,
  signal: AbortSignal,
) => Promise<ShimReply>;

export interface ShimServerLogger {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ShimServerOptions {
  socketPath: string;
  /** Permission bits of the socket file, default 0660. */
  mode?: number;
  /** Group that owns the socket file (oneadmin's: the shims run as oneadmin); default the process's. */
  group?: number;
  /** Largest request frame, default MAX_REQUEST_FRAME_BYTES. */
  maxRequestBytes?: number;
  /** Connections still sending their request, default MAX_READING_CONNECTIONS. */
  maxReadingConnections?: number;
  /** Deadline for a connection's whole request, default REQUEST_READ_TIMEOUT_MS. */
  requestReadTimeoutMs?: number;
  handler: ShimHandler;
  logger?: ShimServerLogger;
}

export interface ShimServer {
  /** Stop listening, abort calls in flight, and wait (up to CLOSE_GRACE_MS) for them to answer. */
  close(): Promise<void>;
  /** Bytes of requests received but not yet complete, over all connections. */
  bufferedRequestBytes(): number;
  /** Connections still sending their request. */
  readingConnections(): number;
}

const silentLogger: ShimServerLogger = { info() {}, error() {} };

export async function startShimServer(opts: ShimServerOptions): Promise<ShimServer> {
  const logger = opts.logger ?? silentLogger;
  const calls = new Set<Call>();
  const maxReading = opts.maxReadingConnections ?? MAX_READING_CONNECTIONS;
  let buffered = 0;
  const limits: ReadLimits = {
    maxRequestBytes: opts.maxRequestBytes ?? MAX_REQUEST_FRAME_BYTES,
    requestReadTimeoutMs: opts.requestReadTimeoutMs ?? REQUEST_READ_TIMEOUT_MS,
    account: (delta) => (buffered += delta),
  };
  const reading = (): number => [...calls].filter((c) => c.isReading()).length;
  await removeStaleSocket(opts.socketPath);

  let ready = false;
  const server = createServer((socket) => {
    // Accepted on the temporary name before its mode and group were set: not a shim of ours.
    if (!ready) return void socket.destroy();
    if (reading() >= maxReading) return refuseConnection(socket, maxReading, logger);
    const call = new Call(socket, opts.handler, logger, limits);
    calls.add(call);
    void call.done.then(() => calls.delete(call));
  });
  const bound = await restrictedListen(server, opts.socketPath, {
    mode: opts.mode ?? DEFAULT_SOCKET_MODE,
    group: opts.group,
  }).catch(async (err: unknown) => {
    await closeServer(server);
    throw err;
  });
  ready = true;
  // After listen, errors are per-accept (EMFILE and the like): log them rather than crash the daemon.
  server.on('error', (err) => logger.error({ err, socketPath: opts.socketPath }, 'shim socket error'));
  logger.info({ socketPath: opts.socketPath }, 'shim socket listening');

  let closing: Promise<void> | undefined;
  return {
    close() {
      closing ??= (async () => {
        const stopped = closeServer(server);
        for (const call of calls) call.abort();
        await settleWithin(Promise.all([...calls].map((call) => call.done)), CLOSE_GRACE_MS);
        for (const call of calls) call.destroy();
        await stopped;
        await bound.remove();
      })();
      return closing;
    },
    bufferedRequestBytes: () => buffered,
    readingConnections: reading,
  };
}

/** One line to a connection over the cap, then close it: its data is never read. */
function refuseConnection(socket: Socket, max: number, logger: ShimServerLogger): void {
  logger.error({ max }, 'shim connection refused: too many connections still sending their request');
  socket.on('error', () => {});
  const reply: ShimReply = {
    stdout: '',
    stderr: [
      `one-storage: the coordinator refused the connection: too many connections (${max}) are still sending their request`,
    ],
    exitCode: EXIT_FAILURE,
  };
  socket.end(frame(ShimEvent.encode({ reply }).finish()));
  socket.destroySoon();
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
