import { execFileSync, spawn } from 'node:child_process';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  /** What the command is for, in the error message ("mount the overlay of host01"). */
  what: string;
  timeoutMs?: number;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** The PATH every command in a container (and the tools here) runs with. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DEFAULT_TIMEOUT_MS = 60_000;
/** Lines of a failed command's output quoted in its error. */
const TAIL_LINES = 25;

/**
 * Runs a tool (argv, never a shell string), collects its output and fails with what it was for, the
 * command line, its exit code and the tail of its output. A command still running after its
 * timeout is killed (by its PID) and reported as such.
 */
export function run(command: string, args: readonly string[], opts: CommandOptions): Promise<CommandResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? { PATH: SYSTEM_PATH, LANG: 'C.UTF-8' },
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${opts.what}: cannot run ${command}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result = {
        code: code ?? 128,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (!timedOut && result.code === 0 && signal === null) return resolve(result);
      if (!timedOut && opts.allowFailure) return resolve(result);
      const why = timedOut ? `still running after ${timeoutMs} ms (killed)` : `exit ${code ?? signal}`;
      reject(new Error(`${opts.what}: ${[command, ...args].join(' ')}: ${why}\n${tail(result)}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

function tail(r: CommandResult): string {
  const lines = `${r.stdout}\n${r.stderr}`.trim().split('\n');
  return lines.slice(-TAIL_LINES).join('\n');
}

/** Fails loudly, naming every missing tool and the script that installs it (no skipping). */
export function requireTools(tools: readonly string[]): void {
  const missing = tools.filter((t) => {
    try {
      execFileSync('which', [t], { stdio: 'ignore', env: { PATH: SYSTEM_PATH } });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0)
    throw new Error(
      `the fleet test needs ${missing.join(', ')} on this machine: run "bash scripts/install-deps.sh" as root`,
    );
}

/**
 * Polls `probe` until it returns a value (not undefined), at most `timeoutMs`; fails naming what it
 * waited for and the last thing the probe said.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline)
      throw new Error(`${what}: not reached within ${timeoutMs} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
