// The coordinator's end of the shim socket (proto/onestorage/shim/v1/shim.proto): one connection is
// one driver call. Decode the request, run the handler, stream its log lines, send the reply, close.
// Whatever goes wrong, the shim gets a reply it can turn into oned's one-line error when the
// connection is still there to carry it.
import { createServer, type Server, type Socket } from 'node:net';
import { ShimEvent, ShimRequest, type ShimReply } from '../../../proto/gen/onestorage/shim/v1/shim.js';
import { removeStaleSocket } from '../../../common/src/sockets/remove-stale-socket.js';
import { frame, MAX_REQUEST_FRAME_BYTES, RequestFrameReader, RequestTooLargeError } from './request-frame.js';
import { restrictedListen } from './restricted-listen.js';

/** rw for the owner and group: oned runs the shims as oneadmin, a member of the socket's group. */
export const DEFAULT_SOCKET_MODE = 0o660;
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

/** What every connection shares: limits, and the server-wide count of bytes held for requests. */
interface ReadLimits {
  maxRequestBytes: number;
  requestReadTimeoutMs: number;
  /** Called with +n when bytes are held, -n when they are released. */
  account(delta: number): void;
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

/** Where a connection is in its one call. */
type CallState = 'reading' | 'running' | 'replied';

/** One connection: at most one request, one handler run, one reply. */
class Call {
  /** Resolves when the connection has closed. */
  readonly done: Promise<void>;
  private readonly controller = new AbortController();
  private readonly reader: RequestFrameReader;
  private readonly readDeadline: NodeJS.Timeout;
  /** Bytes this connection holds in the server-wide count (released once the request is read). */
  private held = 0;
  private state: CallState = 'reading';
  private markDone!: () => void;

  constructor(
    private readonly socket: Socket,
    private readonly handler: ShimHandler,
    private readonly logger: ShimServerLogger,
    private readonly limits: ReadLimits,
  ) {
    this.done = new Promise((resolve) => (this.markDone = resolve));
    this.reader = new RequestFrameReader(limits.maxRequestBytes);
    this.readDeadline = setTimeout(() => {
      this.logger.error(
        { ms: limits.requestReadTimeoutMs },
        'shim connection dropped: no whole request in time',
      );
      socket.destroy();
    }, limits.requestReadTimeoutMs);
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

  isReading(): boolean {
    return this.state === 'reading';
  }

  private onData(chunk: Buffer): void {
    // One request per connection: anything after it is ignored.
    if (this.state !== 'reading') return;
    let request: ShimRequest;
    try {
      const message = this.reader.push(chunk);
      this.hold(this.reader.bufferedBytes);
      if (message === undefined) return;
      this.endReading();
      request = validRequest(ShimRequest.decode(message));
    } catch (err) {
      this.endReading();
      const tooLarge = err instanceof RequestTooLargeError;
      this.logger.error({ err }, tooLarge ? 'shim request refused' : 'undecodable shim request');
      this.reply({
        stdout: '',
        stderr: [
          `one-storage: the coordinator ${tooLarge ? 'refused' : 'could not decode'} the request: ${(err as Error).message}`,
        ],
        exitCode: EXIT_FAILURE,
      });
      // Whatever else the client sends is not read: the connection goes once the line is out.
      this.socket.destroySoon();
      return;
    }
    this.state = 'running';
    void this.run(request);
  }

  /** Keeps the server-wide count in step with what the reader holds. */
  private hold(bytes: number): void {
    this.limits.account(bytes - this.held);
    this.held = bytes;
  }

  /** The request is complete (or refused): its deadline and its bytes no longer count. */
  private endReading(): void {
    clearTimeout(this.readDeadline);
    this.hold(0);
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
    this.socket.setTimeout(this.limits.requestReadTimeoutMs);
  }

  private send(event: ShimEvent): void {
    if (this.socket.writable) this.socket.write(frame(ShimEvent.encode(event).finish()));
  }

  private onClose(): void {
    this.endReading();
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

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
