import { spawnSync } from 'node:child_process';
import { lstat, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ShimEvent, ShimRequest, type ShimReply } from '../../../proto/gen/onestorage/shim/v1/shim.js';
import { FRAME_HEADER_BYTES, frame } from './request-frame.js';
import { DEFAULT_SOCKET_MODE, startShimServer, type ShimHandler, type ShimServer } from './shim-server.js';

const PERMISSION_BITS = 0o777;

let dir: string;
let socketPath: string;
let server: ShimServer | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shim-server-test-'));
  socketPath = join(dir, 'coordinator.sock');
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

const request = (overrides: Partial<ShimRequest> = {}): ShimRequest => ({
  ...ShimRequest.create(),
  kind: 'tm',
  driver: 'grpc',
  action: 'clone',
  args: ['fe:/a', 'host:/b', '7', '1'],
  requestId: 'req-1',
  pid: 1234,
  ...overrides,
});

const ok: ShimReply = { stdout: 'done', stderr: [], exitCode: 0 };

/**
 * Send raw bytes as a shim would and collect every event until the server closes; `onData` is
 * told of each chunk as it arrives.
 */
async function call(bytes: Uint8Array, onData: () => void = () => {}): Promise<ShimEvent[]> {
  const socket = connect({ path: socketPath });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    onData();
  });
  socket.write(bytes);
  await new Promise<void>((resolve, reject) => {
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
  const all = Buffer.concat(chunks);
  const events: ShimEvent[] = [];
  for (let at = 0; at < all.length;) {
    const length = all.readUInt32BE(at);
    events.push(ShimEvent.decode(all.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length)));
    at += FRAME_HEADER_BYTES + length;
  }
  return events;
}

const send = (req: ShimRequest, onData?: () => void): Promise<ShimEvent[]> =>
  call(frame(ShimRequest.encode(req).finish()), onData);

/** A promise and the function that resolves it: a test waits for a handler's moment with it. */
function moment(): { happened: Promise<void>; now(): void } {
  let now = (): void => {};
  const happened = new Promise<void>((resolve) => (now = resolve));
  return { happened, now: () => now() };
}

async function start(handler: ShimHandler, extra: { mode?: number } = {}): Promise<ShimServer> {
  server = await startShimServer({ socketPath, handler, ...extra });
  return server;
}

/** A socket file left behind by a process that died without closing its server. */
function leaveStaleSocket(path: string): void {
  const script = `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`;
  expect(spawnSync(process.execPath, ['-e', script]).status).toBe(0);
}

describe('startShimServer', () => {
  it('passes the decoded request to the handler and sends its reply', async () => {
    const handler = vi.fn<ShimHandler>(async () => ok);
    await start(handler);
    const req = request({ stdin: Buffer.from('PD94bWw+'), args: ['a', '', 'c d'] });
    expect(await send(req)).toEqual([{ reply: ok }]);
    expect(handler.mock.calls[0]?.[0]).toEqual(req);
  });

  it('streams log lines before the reply, in order', async () => {
    // The handler goes on only once the shim has received the first line: it was streamed.
    const firstLineArrived = moment();
    await start(async (_req, log) => {
      log('INFO: one');
      await firstLineArrived.happened;
      log('ERROR: two');
      return { stdout: '', stderr: ['the failure'], exitCode: 1 };
    });
    expect(await send(request(), firstLineArrived.now)).toEqual([
      { log: { line: 'INFO: one' } },
      { log: { line: 'ERROR: two' } },
      { reply: { stdout: '', stderr: ['the failure'], exitCode: 1 } },
    ]);
  });

  it('answers a handler that throws with exit 1 and one line naming the request, and logs the error', async () => {
    const logger = { info: vi.fn(), error: vi.fn() };
    server = await startShimServer({
      socketPath,
      logger,
      handler: async () => {
        throw new Error('boom');
      },
    });
    expect(await send(request({ requestId: 'abc-123' }))).toEqual([
      {
        reply: {
          stdout: '',
          stderr: ['internal error in the coordinator (request abc-123): see its log'],
          exitCode: 1,
        },
      },
    ]);
    expect(logger.error).toHaveBeenCalledWith(
      expect.objectContaining({ requestId: 'abc-123', err: expect.objectContaining({ message: 'boom' }) }),
      'shim handler failed',
    );
  });

  it.each([
    { name: 'bytes that are not protobuf', bytes: frame(Buffer.from([0xff, 0xff, 0xff])) },
    { name: 'a frame above the size limit', bytes: Buffer.from([0xff, 0xff, 0xff, 0xff]) },
    { name: 'a request without a kind', bytes: frame(ShimRequest.encode(request({ kind: '' })).finish()) },
    {
      name: 'a request without an action',
      bytes: frame(ShimRequest.encode(request({ action: '' })).finish()),
    },
    // Found by test/fuzz: a newline in the action name split the reply's ERROR line in two.
    {
      name: 'an action name with a newline',
      bytes: frame(ShimRequest.encode(request({ action: 'clone\nERROR: 1 forged' })).finish()),
    },
    {
      name: 'a driver name with a slash',
      bytes: frame(ShimRequest.encode(request({ driver: '../grpc' })).finish()),
    },
  ])('answers $name with exit 1 and one line', async ({ bytes }) => {
    const handler = vi.fn<ShimHandler>(async () => ok);
    await start(handler);
    const events = await call(bytes);
    expect(events).toHaveLength(1);
    expect(events[0]?.reply?.exitCode).toBe(1);
    expect(events[0]?.reply?.stderr).toHaveLength(1);
    expect(events[0]?.reply?.stderr[0]).toMatch(
      // A frame above the limit is refused at its header: it is not even read.
      /^one-storage: the coordinator (could not decode|refused) the request: /,
    );
    expect(handler).not.toHaveBeenCalled();
  });

  it('decodes a request that arrives one byte at a time', async () => {
    await start(async (req) => ({ stdout: req.action, stderr: [], exitCode: 0 }));
    const bytes = frame(ShimRequest.encode(request({ action: 'mvds' })).finish());
    const socket = connect({ path: socketPath });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    for (const byte of bytes) {
      socket.write(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => socket.on('close', resolve));
    const all = Buffer.concat(chunks);
    expect(ShimEvent.decode(all.subarray(FRAME_HEADER_BYTES)).reply?.stdout).toBe('mvds');
  });

  it('aborts the handler when the shim disconnects before the reply', async () => {
    let aborted: (reason: unknown) => void = () => {};
    const abortReason = new Promise((resolve) => (aborted = resolve));
    const handlerRuns = moment();
    await start(
      (_req, _log, signal) =>
        new Promise((resolve) => {
          signal.addEventListener('abort', () => {
            aborted(signal.reason);
            resolve(ok);
          });
          handlerRuns.now();
        }),
    );
    const socket = connect({ path: socketPath });
    socket.write(frame(ShimRequest.encode(request()).finish()));
    await handlerRuns.happened;
    socket.destroy();
    expect(String(await abortReason)).toMatch(/disconnected before the reply/);
  });

  it('creates the socket with mode 0660 by default', async () => {
    await start(async () => ok);
    const stats = await lstat(socketPath);
    expect(stats.isSocket()).toBe(true);
    expect((stats.mode & PERMISSION_BITS).toString(8)).toBe(DEFAULT_SOCKET_MODE.toString(8));
    expect(DEFAULT_SOCKET_MODE).toBe(0o660);
  });

  it('applies a custom mode', async () => {
    await start(async () => ok, { mode: 0o600 });
    expect(((await lstat(socketPath)).mode & PERMISSION_BITS).toString(8)).toBe('600');
  });

  it('replaces a stale socket file left by a dead coordinator', async () => {
    leaveStaleSocket(socketPath);
    expect((await lstat(socketPath)).isSocket()).toBe(true);
    await start(async () => ok);
    expect(await send(request())).toEqual([{ reply: ok }]);
  });

  it('refuses to replace a file that is not a socket', async () => {
    await writeFile(socketPath, 'precious');
    await expect(start(async () => ok)).rejects.toThrow(/exists and is not a socket/);
    expect((await stat(socketPath)).isFile()).toBe(true);
  });

  it('refuses to take over the socket of a coordinator that is still running', async () => {
    const first = await startShimServer({ socketPath, handler: async () => ok });
    try {
      await expect(startShimServer({ socketPath, handler: async () => ok })).rejects.toThrow(/is in use/);
      expect(await send(request())).toEqual([{ reply: ok }]);
    } finally {
      await first.close();
    }
  });

  it('on close, aborts calls in flight, lets them answer, and removes the socket', async () => {
    const handlerRuns = moment();
    await start(
      (_req, _log, signal) =>
        new Promise((resolve) => {
          signal.addEventListener('abort', () =>
            resolve({ stdout: '', stderr: [`cancelled: ${String(signal.reason)}`], exitCode: 1 }),
          );
          handlerRuns.now();
        }),
    );
    const pending = send(request());
    await handlerRuns.happened;
    await server?.close();
    server = undefined;
    const events = await pending;
    expect(events[0]?.reply?.stderr[0]).toMatch(/cancelled: .*shutting down/);
    await expect(lstat(socketPath)).rejects.toThrow(/ENOENT/);
  });
});
