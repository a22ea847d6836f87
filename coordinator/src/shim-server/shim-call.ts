// One connection on the shim socket, one driver call: read the request (within the server's limits),
// run the handler, stream its log lines, send the reply, close.
import type { Socket } from 'node:net';
import { ShimEvent, ShimRequest, type ShimReply } from '../../../proto/gen/onestorage/shim/v1/shim.js';
import { FrameTooLargeError } from '../../../common/src/sockets/frame.cjs';
import { frame, RequestFrameReader } from './request-frame.js';
import type { ShimHandler, ShimServerLogger } from './shim-server.js';

/** Exit code for failures the server itself answers: any non-zero code is FAILURE for oned. */
export const EXIT_FAILURE = 1;

/** What every connection shares: limits, and the server-wide count of bytes held for requests. */
export interface ReadLimits {
  maxRequestBytes: number;
  requestReadTimeoutMs: number;
  /** Called with +n when bytes are held, -n when they are released. */
  account(delta: number): void;
}

/**
 * The abort reason when the shim went away before its reply: oned killed the driver action
 * (DRIVER_CANCEL, a timeout) or the shim died. The journal files such a call as cancelled by oned.
 */
export class ShimDisconnectedError extends Error {
  constructor() {
    super('the shim disconnected before the reply');
    this.name = 'ShimDisconnectedError';
  }
}

/** What an installed shim's driver directory and action file may be named. */
const SHIM_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** Where a connection is in its one call. */
type CallState = 'reading' | 'running' | 'replied';

/** One connection: at most one request, one handler run, one reply. */
export class Call {
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
      const tooLarge = err instanceof FrameTooLargeError;
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
    if (this.state !== 'replied') this.controller.abort(new ShimDisconnectedError());
    this.markDone();
  }
}

/** Reject what decodes as protobuf but cannot be a shim's request, naming the bad field. */
function validRequest(request: ShimRequest): ShimRequest {
  if (request.kind !== 'tm' && request.kind !== 'datastore' && request.kind !== 'control') {
    throw new Error(`kind must be "tm", "datastore" or "control", got ${JSON.stringify(request.kind)}`);
  }
  // A control request (one-storage cancel) names no driver.
  if (request.driver === '' && request.kind !== 'control') throw new Error('driver is empty');
  if (request.action === '') throw new Error('action is empty');
  // Driver and action are the names of the directory and file the shim was installed as.
  for (const [field, value] of [
    ['driver', request.driver],
    ['action', request.action],
  ] as const) {
    if (value !== '' && !SHIM_NAME.test(value)) {
      throw new Error(`${field} is not a driver or action name (letters, digits, . _ -; at most 64)`);
    }
  }
  if (request.requestId === '') throw new Error('request_id is empty');
  return request;
}
