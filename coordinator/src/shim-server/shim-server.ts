// The coordinator's end of the shim socket (proto/onestorage/shim/v1/shim.proto): one connection is
// one driver call. Decode the request, run the handler, stream its log lines, send the reply, close.
// Whatever goes wrong, the shim gets a reply it can turn into oned's one-line error when the
// connection is still there to carry it.
import { chmod } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { ShimEvent, ShimRequest, type ShimReply } from '../../../proto/gen/onestorage/shim/v1/shim.js';
import { removeStaleSocket } from '../../../common/src/sockets/remove-stale-socket.js';
import { frame, RequestFrameReader } from './request-frame.js';

/** rw for the owner and group: oned runs the shims as oneadmin, a member of the socket's group. */
export const DEFAULT_SOCKET_MODE = 0o660;
/**
 * A shim reads its stdin before connecting and sends the request at once, so a connection that has
 * not delivered a whole request by then is stuck or not a shim.
 */
export const REQUEST_READ_TIMEOUT_MS = 30_000;
/** On close(), how long aborted handlers get to reply before their connections are cut. */
export const CLOSE_GRACE_MS = 5_000;
/** Exit code for failures the server itself answers: any non-zero code is FAILURE for oned. */
const EXIT_FAILURE = 1;

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
  handler: ShimHandler;
  logger?: ShimServerLogger;
}

export interface ShimServer {
  /** Stop listening, abort calls in flight, and wait (up to CLOSE_GRACE_MS) for them to answer. */
  close(): Promise<void>;
}

const silentLogger: ShimServerLogger = { info() {}, error() {} };

export async function startShimServer(opts: ShimServerOptions): Promise<ShimServer> {
  const logger = opts.logger ?? silentLogger;
  const calls = new Set<Call>();
  await removeStaleSocket(opts.socketPath);

  const server = createServer((socket) => {
    const call = new Call(socket, opts.handler, logger);
    calls.add(call);
    void call.done.then(() => calls.delete(call));
  });
  await listen(server, opts.socketPath);
  // After listen, errors are per-accept (EMFILE and the like): log them rather than crash the daemon.
  server.on('error', (err) => logger.error({ err, socketPath: opts.socketPath }, 'shim socket error'));
  try {
    await chmod(opts.socketPath, opts.mode ?? DEFAULT_SOCKET_MODE);
  } catch (err) {
    await closeServer(server);
    throw err;
  }
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
      })();
      return closing;
    },
  };
}

/** Where a connection is in its one call. */
type CallState = 'reading' | 'running' | 'replied';

/** One connection: at most one request, one handler run, one reply. */
class Call {
  /** Resolves when the connection has closed. */
  readonly done: Promise<void>;
  private readonly controller = new AbortController();
  private readonly reader = new RequestFrameReader();
  private state: CallState = 'reading';
  private markDone!: () => void;

  constructor(
    private readonly socket: Socket,
    private readonly handler: ShimHandler,
    private readonly logger: ShimServerLogger,
  ) {
    this.done = new Promise((resolve) => (this.markDone = resolve));
    socket.setTimeout(REQUEST_READ_TIMEOUT_MS);
    socket.on('timeout', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // Errors (EPIPE, ECONNRESET from a killed shim) are followed by 'close'; that is where we act.
    socket.on('error', () => {});
    socket.on('close', () => this.onClose());
  }

  abort(): void {
    this.controller.abort(new Error('the coordinator is shutting down'));
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    // One request per connection: anything after it is ignored.
    if (this.state !== 'reading') return;
    let request: ShimRequest;
    try {
      const message = this.reader.push(chunk);
      if (message === undefined) return;
      request = validRequest(ShimRequest.decode(message));
    } catch (err) {
      this.logger.error({ err }, 'undecodable shim request');
      this.reply({
        stdout: '',
        stderr: [`one-storage: the coordinator could not decode the request: ${(err as Error).message}`],
        exitCode: EXIT_FAILURE,
      });
      return;
    }
    this.state = 'running';
    // The handler may run for hours (a disk copy); only a closed connection ends it early.
    this.socket.setTimeout(0);
    void this.run(request);
  }

  private async run(request: ShimRequest): Promise<void> {
    const context = {
      requestId: request.requestId,
      kind: request.kind,
      driver: request.driver,
      action: request.action,
      pid: request.pid,
    };
    const log = (line: string): void => {
      if (this.state === 'running') this.send({ log: { line } });
    };
    let reply: ShimReply;
    try {
      reply = await this.handler(request, log, this.controller.signal);
    } catch (err) {
      this.logger.error({ ...context, err }, 'shim handler failed');
      reply = {
        stdout: '',
        stderr: [`internal error in the coordinator (request ${request.requestId}): see its log`],
        exitCode: EXIT_FAILURE,
      };
    }
    if (!this.socket.writable) {
      this.logger.info({ ...context, exitCode: reply.exitCode }, 'shim went away before the reply');
      return;
    }
    this.reply(reply);
  }

  private reply(reply: ShimReply): void {
    this.send({ reply });
    this.state = 'replied';
    this.socket.end();
    // The shim closes as soon as it has the reply; one that does not is cut off after a while.
    this.socket.setTimeout(REQUEST_READ_TIMEOUT_MS);
  }

  private send(event: ShimEvent): void {
    if (this.socket.writable) this.socket.write(frame(ShimEvent.encode(event).finish()));
  }

  private onClose(): void {
    // The shim was killed (oned cancelled the action) or died: stop the work done on its behalf.
    if (this.state !== 'replied') this.controller.abort(new Error('the shim disconnected before the reply'));
    this.markDone();
  }
}

/** Reject what decodes as protobuf but cannot be a shim's request, naming the bad field. */
function validRequest(request: ShimRequest): ShimRequest {
  if (request.kind !== 'tm' && request.kind !== 'datastore') {
    throw new Error(`kind must be "tm" or "datastore", got ${JSON.stringify(request.kind)}`);
  }
  if (request.driver === '') throw new Error('driver is empty');
  if (request.action === '') throw new Error('action is empty');
  if (request.requestId === '') throw new Error('request_id is empty');
  return request;
}

function listen(server: Server, socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
