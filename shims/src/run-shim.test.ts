// The shims as oned runs them: real processes started from the installed entries, talking to a real
// shim server over a UNIX socket. The runtime is the build output (`npm test` builds first).
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShimReply, ShimRequest } from '../../proto/gen/onestorage/shim/v1/shim.js';
import { startShimServer, type ShimServer } from '../../coordinator/src/shim-server/shim-server.js';
import { installShims, RUNTIME_FILE } from './install.js';

const RUNTIME_DIR = fileURLToPath(new URL('../../dist/shims/src/', import.meta.url));
const FIVE_MIB = 5 * 1024 * 1024;
const THREE_MIB = 3 * 1024 * 1024;
/** oned's rule for log lines (docs/opennebula/driver-protocol.md#script-results); everything else on stderr is the error message. */
const LOG_LINE = /^(ERROR|INFO|WARN|DEBUG):\s+(\d+)?\s*(.*)$/;

interface Run {
  status: number | null;
  stdout: string;
  stderrLines: string[];
}

/** What the handler saw, per request id, and how it should answer (from argv[0]). */
const seen = new Map<string, ShimRequest>();
let aborted: ((reason: unknown) => void) | undefined;
/** Called once the 'hang' handler runs (the shim's request has reached the coordinator). */
let hanging: (() => void) | undefined;

async function handler(
  req: ShimRequest,
  log: (line: string) => void,
  signal: AbortSignal,
): Promise<ShimReply> {
  seen.set(req.requestId, req);
  switch (req.args[0]) {
    case 'echo':
      return {
        stdout: JSON.stringify({ kind: req.kind, driver: req.driver, action: req.action, args: req.args }),
        stderr: [],
        exitCode: 0,
      };
    case 'stdin':
      return { stdout: `${req.stdin.length} ${sha(req.stdin)}`, stderr: [], exitCode: 0 };
    case 'verbatim':
      return { stdout: 'SOURCE qcow2\n\n  trailing  ', stderr: [], exitCode: 0 };
    case 'fail':
      log('INFO: clone: copying fe:/a to host:/b');
      // A turn of the event loop between the lines: each goes out in its own frame.
      await new Promise((resolve) => setImmediate(resolve));
      log('ERROR: clone: qemu-img convert failed');
      return {
        stdout: '',
        stderr: [
          'INFO: clone: cleaned up host:/b.tmp',
          'Error copying fe:/a to host:/b: no space left on device',
        ],
        exitCode: 1,
      };
    case 'exit':
      return { stdout: '', stderr: ['exit code test'], exitCode: Number(req.args[1]) };
    case 'hang':
      return new Promise((resolve) => {
        signal.addEventListener('abort', () => {
          aborted?.(signal.reason);
          resolve({ stdout: '', stderr: [], exitCode: 1 });
        });
        hanging?.();
      });
    default:
      throw new Error(`test handler: unknown mode ${req.args[0]}`);
  }
}

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

let dir: string;
let socketPath: string;
let remotesDir: string;
let server: ShimServer;

beforeAll(async () => {
  if (!existsSync(join(RUNTIME_DIR, RUNTIME_FILE))) {
    throw new Error(`${RUNTIME_DIR}${RUNTIME_FILE} is missing: run npx tsc -p tsconfig.build.json first`);
  }
  dir = await mkdtemp(join(tmpdir(), 'run-shim-test-'));
  socketPath = join(dir, 'coordinator.sock');
  remotesDir = join(dir, 'remotes');
  await installShims({ remotesDir, socketPath, runtimeDir: RUNTIME_DIR });
  server = await startShimServer({ socketPath, handler });
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * Run an installed entry (relative to the remotes directory, or absolute) directly, as oned does: its
 * #! line picks node. Always asynchronous: the shim server runs in this process.
 */
function runEntry(
  entry: string,
  args: string[],
  opts: { stdin?: Buffer | 'ignore' | 'closed-pipe'; env?: Record<string, string> } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const stdinMode = opts.stdin === 'ignore' ? 'ignore' : 'pipe';
    const child = spawn(isAbsolute(entry) ? entry : join(remotesDir, entry), args, {
      stdio: [stdinMode, 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (status) => {
      const stderr = Buffer.concat(err).toString();
      resolve({
        status,
        stdout: Buffer.concat(out).toString(),
        stderrLines: stderr === '' ? [] : stderr.replace(/\n$/, '').split('\n'),
      });
    });
    if (child.stdin !== null) {
      if (Buffer.isBuffer(opts.stdin)) child.stdin.end(opts.stdin);
      else child.stdin.end();
    }
  });
}

describe('an installed shim', () => {
  it.each([
    { entry: 'tm/grpc/clone', kind: 'tm', driver: 'grpc', action: 'clone' },
    { entry: 'tm/grpc_qcow2/clone.ssh', kind: 'tm', driver: 'grpc_qcow2', action: 'clone.ssh' },
    {
      entry: 'tm/grpc_qcow2/snap_create_live.grpc',
      kind: 'tm',
      driver: 'grpc_qcow2',
      action: 'snap_create_live.grpc',
    },
    { entry: 'datastore/grpc/cp', kind: 'datastore', driver: 'grpc', action: 'cp' },
    { entry: 'datastore/grpc_backup/backup', kind: 'datastore', driver: 'grpc_backup', action: 'backup' },
  ])('$entry sends its kind, driver, action and argv exactly', async ({ entry, kind, driver, action }) => {
    const args = [
      'echo',
      'fe:/var/lib/one/datastores/1/abc',
      'node1:/var/lib/one//datastores/0/7/disk.0',
      '',
      'é ü',
      '7',
    ];
    const run = await runEntry(entry, args);
    expect(run).toEqual({
      status: 0,
      stdout: JSON.stringify({ kind, driver, action, args }),
      stderrLines: [],
    });
  });

  it('writes stdout verbatim, without adding a newline', async () => {
    const run = await runEntry('datastore/grpc/cp', ['verbatim']);
    expect(run.stdout).toBe('SOURCE qcow2\n\n  trailing  ');
  });

  it('puts log lines and the reply on stderr in order, with exactly one non-log line on failure', async () => {
    const run = await runEntry('tm/grpc/clone', ['fail']);
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderrLines).toEqual([
      'INFO: clone: copying fe:/a to host:/b',
      'ERROR: clone: qemu-img convert failed',
      'INFO: clone: cleaned up host:/b.tmp',
      'Error copying fe:/a to host:/b: no space left on device',
    ]);
    expect(run.stderrLines.filter((line) => !LOG_LINE.test(line))).toHaveLength(1);
  });

  it.each([
    { code: '0', status: 0 },
    { code: '3', status: 3 },
    { code: '255', status: 255 },
    // Out-of-range codes would wrap (256 → 0) into a success: they become 1.
    { code: '256', status: 1 },
    { code: '-1', status: 1 },
  ])('exits $status for a reply with exit code $code', async ({ code, status }) => {
    expect((await runEntry('tm/grpc/delete', ['exit', code])).status).toBe(status);
  });

  it.each([
    { name: '/dev/null', stdin: 'ignore' as const },
    { name: 'a pipe closed at once', stdin: 'closed-pipe' as const },
  ])('sends an empty stdin when stdin is $name, without waiting', async ({ stdin }) => {
    const run = await runEntry('tm/grpc/mkswap', ['stdin'], { stdin });
    expect(run).toEqual({ status: 0, stdout: `0 ${sha(Buffer.alloc(0))}`, stderrLines: [] });
  });

  it('carries base64 XML on stdin, as one_datastore sends it', async () => {
    const xml = Buffer.from(
      Buffer.from('<DS_DRIVER_ACTION_DATA><IMAGE/></DS_DRIVER_ACTION_DATA>').toString('base64'),
    );
    const run = await runEntry('datastore/grpc/stat', ['stdin', '42'], { stdin: xml });
    expect(run.stdout).toBe(`${xml.length} ${sha(xml)}`);
  });

  it('carries a 3 MiB stdin intact', async () => {
    const payload = randomBytes(THREE_MIB);
    const run = await runEntry('tm/grpc_qcow2/premigrate', ['stdin'], { stdin: payload });
    expect(run).toEqual({ status: 0, stdout: `${THREE_MIB} ${sha(payload)}`, stderrLines: [] });
  });

  it('refuses a stdin above the request limit in one line, without sending it', async () => {
    const before = seen.size;
    const run = await runEntry('tm/grpc_qcow2/premigrate', ['stdin'], { stdin: randomBytes(FIVE_MIB) });
    expect(run.status).toBe(1);
    expect(run.stderrLines).toHaveLength(1);
    expect(run.stderrLines[0]).toMatch(
      /premigrate failed: frame of \d+ bytes exceeds the 4194304-byte limit/,
    );
    expect(seen.size).toBe(before);
  });

  it('sends its pid and a fresh request id', async () => {
    const before = new Set(seen.keys());
    await runEntry('tm/grpc/ln', ['echo']);
    await runEntry('tm/grpc/ln', ['echo']);
    const fresh = [...seen.entries()].filter(([id]) => !before.has(id));
    expect(fresh).toHaveLength(2);
    for (const [id, req] of fresh) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(req.pid).toBeGreaterThan(0);
    }
  });

  it('aborts the call in the coordinator when oned kills the shim', async () => {
    const reason = new Promise((resolve) => (aborted = resolve));
    const handled = new Promise<void>((resolve) => (hanging = resolve));
    const child = spawn(join(remotesDir, 'tm/grpc/mv'), ['hang'], { stdio: 'ignore' });
    await handled;
    child.kill('SIGTERM');
    expect(String(await reason)).toMatch(/disconnected before the reply/);
  });
});

describe('an installed shim under a "type": "module" package', () => {
  it('still runs: the entry falls back from require to import()', async () => {
    const scope = join(dir, 'esm-scope');
    await mkdir(scope);
    await writeFile(join(scope, 'package.json'), JSON.stringify({ type: 'module' }));
    await installShims({ remotesDir: join(scope, 'remotes'), socketPath, runtimeDir: RUNTIME_DIR });
    const run = await runEntry(join(scope, 'remotes/tm/grpc/clone'), ['echo', 'x']);
    expect(run.stderrLines).toEqual([]);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ action: 'clone', args: ['echo', 'x'] });
  });
});

describe('an installed shim without its coordinator', () => {
  const UNREACHABLE = (path: string, code: string) =>
    `one-storage: coordinator unreachable at ${path} (${code}): is one-storage-coordinator running?`;

  it('prints one line and fails when the socket does not exist (ONE_STORAGE_SOCKET overrides the baked path)', async () => {
    const missing = join(dir, 'missing.sock');
    const run = await runEntry('tm/grpc/clone', ['echo'], { env: { ONE_STORAGE_SOCKET: missing } });
    expect(run).toEqual({ status: 1, stdout: '', stderrLines: [UNREACHABLE(missing, 'ENOENT')] });
  });

  it('prints one line and fails when nobody listens on the socket', async () => {
    const stale = join(dir, 'stale.sock');
    const script = `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.exit(0))`;
    expect(spawnSync(process.execPath, ['-e', script]).status).toBe(0);
    const run = await runEntry('datastore/grpc/monitor', ['echo'], { env: { ONE_STORAGE_SOCKET: stale } });
    expect(run).toEqual({ status: 1, stdout: '', stderrLines: [UNREACHABLE(stale, 'ECONNREFUSED')] });
  });

  it('prints one line and fails when the coordinator drops the connection before replying', async () => {
    const rude = join(dir, 'rude.sock');
    const dropper = createServer((socket) => socket.once('data', () => socket.destroy()));
    await new Promise<void>((resolve) => dropper.listen(rude, resolve));
    try {
      const run = await runEntry('tm/grpc/clone', ['echo'], { env: { ONE_STORAGE_SOCKET: rude } });
      expect(run.status).toBe(1);
      expect(run.stderrLines).toHaveLength(1);
      expect(run.stderrLines[0]).toMatch(
        new RegExp(
          `^one-storage: the coordinator at ${rude} closed the connection before replying \\(.*request [0-9a-f-]{36}\\): see its log$`,
        ),
      );
    } finally {
      await new Promise((resolve) => dropper.close(resolve));
    }
  });

  it('prints one line and fails when its runtime is gone', async () => {
    const other = join(dir, 'other-remotes');
    const runtimeCopy = join(dir, 'runtime-copy');
    spawnSync('cp', ['-r', RUNTIME_DIR, runtimeCopy]);
    await installShims({ remotesDir: other, socketPath, runtimeDir: runtimeCopy });
    await rm(runtimeCopy, { recursive: true });
    const run = await runEntry(join(other, 'tm/grpc/clone'), ['echo']);
    expect(run.status).toBe(1);
    expect(run.stderrLines).toEqual([
      expect.stringMatching(/^one-storage: shim runtime failed: Cannot find module/),
    ]);
  });

  it('fails with one line when the socket is not accessible', async () => {
    // Root ignores permission bits; this case only means something for an unprivileged user.
    if (process.getuid?.() === 0) return;
    const locked = join(dir, 'locked.sock');
    const lockedServer = await startShimServer({ socketPath: locked, handler, mode: 0o000 });
    try {
      await chmod(locked, 0o000);
      const run = await runEntry('tm/grpc/clone', ['echo'], { env: { ONE_STORAGE_SOCKET: locked } });
      expect(run).toEqual({ status: 1, stdout: '', stderrLines: [UNREACHABLE(locked, 'EACCES')] });
    } finally {
      await lockedServer.close();
    }
  });
});
