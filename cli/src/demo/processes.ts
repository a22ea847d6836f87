import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { type Server, createServer, connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: the directory holding package.json, from source or from dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the one-storage package root');
    dir = up;
  }
  return dir;
}

/** A compiled entry point of the package (the daemons always run from dist/). */
export function distEntry(relative: string): string {
  const file = join(packageRoot(), 'dist', relative);
  if (!existsSync(file)) throw new Error(`${file} is missing: run "npm run build" first`);
  return file;
}

/** A free TCP port on loopback (bound and released). Several at once: freePorts. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error('no free port on 127.0.0.1');
  return port;
}

/**
 * `n` distinct free TCP ports on loopback. Each is bound until all `n` are chosen, so the kernel
 * cannot hand one out twice (as it can to picks made one after another, each released before the
 * next); then all are released, also when a bind fails.
 */
export async function freePorts(n: number): Promise<number[]> {
  if (!Number.isInteger(n) || n < 0) throw new Error(`freePorts: n must be a whole number >= 0 (got ${n})`);
  const held: Server[] = [];
  try {
    for (let i = 0; i < n; i++) held.push(await listenOnLoopback());
    return held.map((srv) => {
      const addr = srv.address();
      if (typeof addr !== 'object' || !addr) throw new Error('a loopback listener has no port');
      return addr.port;
    });
  } finally {
    await Promise.all(held.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
  }
}

/** A TCP listener on an ephemeral loopback port. */
function listenOnLoopback(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

/** A user to start a daemon as (numeric ids: spawn calls setgid and setuid with them). */
export interface RunAs {
  uid: number;
  gid: number;
}

/**
 * Starts `node <entry> args...` with stdout and stderr appended to `logFile`, as `runAs` when given
 * (the log is opened here, so the daemon needs no right on it), inside the network namespace
 * `netns` when given (`ip netns exec` replaces itself with node: the PID is the daemon's).
 */
export function startDaemon(
  entry: string,
  args: string[],
  logFile: string,
  runAs?: RunAs,
  netns?: string,
  env?: Readonly<Record<string, string>>,
): ChildProcess {
  if (runAs && netns) throw new Error(`startDaemon ${entry}: a daemon in a namespace runs as root`);
  const argv = [process.execPath, entry, ...args];
  const fd = openSync(logFile, 'a');
  const environment = env ? { env: { ...process.env, ...env } } : {};
  try {
    if (netns)
      return spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['ignore', fd, fd], ...environment });
    return spawn(process.execPath, argv.slice(1), { stdio: ['ignore', fd, fd], ...runAs, ...environment });
  } finally {
    closeSync(fd);
  }
}

/** Stops a process we started, by its PID: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopDaemon(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Polls `probe` until it resolves true; fails early when the daemon exits, with its log's tail. */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  child: ChildProcess,
  logFile: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n');
      throw new Error(`${what} exited with code ${child.exitCode}:\n${tail}`);
    }
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms (log: ${logFile})`);
}

/** Whether a UNIX socket accepts connections. */
export function socketAccepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
