// Security review, class 4 (docs/security.md#the-attack-tests): the coordinator's shim socket. A local client that half-sends large frames, opens
// many connections or goes quiet mid-frame must not make the coordinator buffer without bound (12
// half-sent frames once took it from 74 to 829 MiB), and a legitimate shim call, run as oned runs it,
// still succeeds meanwhile. The socket is group-owned and 0660 before anything can connect to it.
import { lstatSync, watch } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { distEntry } from '../../cli/src/demo/processes.js';
import { runAction } from '../../cli/src/demo/run-action.js';
import { MAX_REQUEST_FRAME_BYTES } from '../../coordinator/src/shim-server/request-frame.js';
import {
  startShimServer,
  type ShimServer,
  type ShimServerOptions,
} from '../../coordinator/src/shim-server/shim-server.js';
import { ShimEvent, type ShimReply } from '../../proto/gen/onestorage/shim/v1/shim.js';
import { installShims } from '../../shims/src/install.js';
import { MIB } from '../../common/src/units.js';

const HEADER_BYTES = 4;
const ATTACKERS = 12;
/** A group the socket is handed to in these tests (nogroup on Debian). */
const TEST_GID = 65534;
const SOCKET_MODE = 0o660;

let dir: string;
let socketPath: string;
let remotesDir: string;
let server: ShimServer | undefined;
const clients: Socket[] = [];

const ok: ShimReply = { stdout: '', stderr: [], exitCode: 0 };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coord-socket-'));
  socketPath = join(dir, 'coordinator.sock');
  remotesDir = join(dir, 'remotes');
  await installShims({ remotesDir, socketPath, runtimeDir: dirname(distEntry('shims/src/run-shim.cjs')) });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function start(extra: Partial<ShimServerOptions> = {}): Promise<ShimServer> {
  server = await startShimServer({ socketPath, handler: async () => ok, ...extra });
  return server;
}

/** A client that announces `announced` bytes and sends `sent` of them, then waits. */
function halfSend(announced: number, sent: number): { socket: Socket; closed: Promise<ShimEvent[]> } {
  const socket = connect({ path: socketPath });
  clients.push(socket);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(announced, 0);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  socket.write(Buffer.concat([header, Buffer.alloc(sent, 0x41)]));
  const closed = new Promise<ShimEvent[]>((resolve) =>
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      const events: ShimEvent[] = [];
      for (let at = 0; at + HEADER_BYTES <= all.length;) {
        const length = all.readUInt32BE(at);
        events.push(ShimEvent.decode(all.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length)));
        at += HEADER_BYTES + length;
      }
      resolve(events);
    }),
  );
  return { socket, closed };
}

/** The shim call oned would make, as a process: it must get its reply whatever else is going on. */
async function legitimateCall(): Promise<void> {
  const r = await runAction(remotesDir, 'tm', 'grpc', 'delete', [
    `host01:/var/lib/one/datastores/0/7`,
    '7',
    '0',
  ]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

function expectOneLineRefusal(events: ShimEvent[], pattern: RegExp): void {
  expect(events).toHaveLength(1);
  const reply = events[0]?.reply;
  expect(reply?.exitCode).not.toBe(0);
  expect(reply?.stderr).toHaveLength(1);
  expect(reply?.stderr[0]).toMatch(pattern);
}

describe('the shim socket under attack', () => {
  it('caps a request frame at a few MiB: a larger announced length gets one line and the connection closed', async () => {
    expect(MAX_REQUEST_FRAME_BYTES).toBeLessThanOrEqual(8 * MIB);
    await start();
    const { closed } = halfSend(64 * MIB, MIB);
    expectOneLineRefusal(await closed, new RegExp(`exceeds the ${MAX_REQUEST_FRAME_BYTES}-byte limit`));
  }, 20_000);

  it(`${ATTACKERS} half-sent large frames stay under the cap, and a shim call succeeds meanwhile`, async () => {
    const s = await start();
    const refused = Array.from({ length: ATTACKERS }, () => halfSend(64 * MIB, MIB));
    const held = Array.from({ length: ATTACKERS }, () =>
      halfSend(MAX_REQUEST_FRAME_BYTES, MAX_REQUEST_FRAME_BYTES - 1),
    );
    for (const r of refused) expectOneLineRefusal(await r.closed, /exceeds the \d+-byte limit/);
    const cap = ATTACKERS * (HEADER_BYTES + MAX_REQUEST_FRAME_BYTES);
    await vi.waitFor(
      () => expect(s.bufferedRequestBytes()).toBe(ATTACKERS * (HEADER_BYTES + MAX_REQUEST_FRAME_BYTES - 1)),
      {
        timeout: 30_000,
        interval: 20,
      },
    );
    expect(s.bufferedRequestBytes()).toBeLessThanOrEqual(cap);
    await legitimateCall();
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    await vi.waitFor(() => expect(s.bufferedRequestBytes()).toBe(0));
  }, 60_000);

  it('drops a connection that goes quiet mid-frame after the read timeout', async () => {
    const s = await start({ requestReadTimeoutMs: 300 });
    const { closed } = halfSend(1024, 10);
    await closed;
    await vi.waitFor(() => expect(s.bufferedRequestBytes()).toBe(0));
  }, 10_000);

  it('refuses connections beyond the cap on those still reading, at once, and serves again after', async () => {
    const s = await start({ maxReadingConnections: 3 });
    const idle = Array.from({ length: 3 }, () => halfSend(1024, 10));
    await vi.waitFor(() => expect(s.readingConnections()).toBe(3));
    const extra = halfSend(1024, 10);
    expectOneLineRefusal(await extra.closed, /too many connections/);
    for (const i of idle) i.socket.destroy();
    await vi.waitFor(() => expect(s.readingConnections()).toBe(0));
    await legitimateCall();
  }, 20_000);
});

describe('the socket file', () => {
  it(`is 0660 and owned by the configured group from the moment it appears`, async () => {
    const seen: Array<{ mode: number; gid: number }> = [];
    const watcher = watch(dir, (_event, name) => {
      if (name !== 'coordinator.sock') return;
      try {
        const st = lstatSync(socketPath);
        seen.push({ mode: st.mode & 0o777, gid: st.gid });
      } catch {
        // Gone again (renamed away): nothing to see.
      }
    });
    try {
      await start({ group: TEST_GID });
    } finally {
      watcher.close();
    }
    const st = lstatSync(socketPath);
    expect({ mode: st.mode & 0o777, gid: st.gid }).toEqual({ mode: SOCKET_MODE, gid: TEST_GID });
    for (const s of seen) expect(s).toEqual({ mode: SOCKET_MODE, gid: TEST_GID });
    await legitimateCall();
  });
});
