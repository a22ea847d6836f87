import { spawn } from 'node:child_process';
import { StorageError, oneLine } from '../errors.js';
import { MIB } from '../units.js';

/** Default limit for any external tool: a stuck qemu-img must not hold an action forever. */
export const DEFAULT_TOOL_TIMEOUT_MS = 10 * 60_000;
/** A job that moves a whole disk (a copy, a block commit) takes long: this only bounds a stuck one. */
export const WHOLE_DISK_TIMEOUT_MS = 6 * 60 * 60_000;
/** Tools print little; this only guards memory against a runaway. */
const MAX_TOOL_OUTPUT_BYTES = 64 * MIB;
/**
 * Where a tool finds the descriptor handed to it with `ToolOptions.fd`: its own fd 3. A child
 * cannot reach the agent's descriptors through `/proc/<agent pid>/fd/N` once the agent has dropped
 * root (the kernel makes a process that changed its uids non-dumpable, and its /proc entries
 * root's), but its own inherited descriptor always opens.
 */
export const INHERITED_FD_PATH = '/dev/fd/3';

export interface ToolResult {
  stdout: string;
  stderr: string;
}

export interface ToolOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  cwd?: string;
  /** What the caller was doing, for the error message ("resize host01:/.../disk.0"). */
  what?: string;
  /** An open descriptor the tool inherits as its fd 3 (name it INHERITED_FD_PATH in `args`). */
  fd?: number;
  /** Sees each chunk of stdout as it arrives (a tool's progress lines); stdout is collected all the same. */
  onStdout?: (chunk: Buffer) => void;
  /** The same for stderr (virsh --verbose writes its progress there). */
  onStderr?: (chunk: Buffer) => void;
  /** Parts of stderr that are not words for people (progress figures): left out of an error message. */
  stderrNoise?: RegExp;
}

/**
 * Runs an external tool with an argument array (never a shell string), LANG=C so its messages are
 * parseable, a timeout, and the caller's abort signal, so a cancelled call kills its qemu-img.
 * A missing tool or a non-zero exit becomes a one-line TOOL_FAILED error with the tool's stderr.
 */
export function runTool(file: string, args: readonly string[], opts: ToolOptions = {}): Promise<ToolResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: { ...process.env, LANG: 'C', LC_ALL: 'C' },
      stdio: ['ignore', 'pipe', 'pipe', ...(opts.fd !== undefined ? [opts.fd] : [])],
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let bytes = 0;
    let stopped: 'timeout' | 'cancelled' | 'output' | undefined;
    const stop = (why: typeof stopped): void => {
      stopped ??= why;
      child.kill('SIGTERM');
    };
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_TOOL_OUTPUT_BYTES) stop('output');
      else into.push(chunk);
    };
    child.stdout?.on('data', collect(out));
    if (opts.onStdout) child.stdout?.on('data', opts.onStdout);
    if (opts.onStderr) child.stderr?.on('data', opts.onStderr);
    child.stderr?.on('data', collect(err));
    const timer = setTimeout(() => stop('timeout'), timeoutMs);
    const onAbort = (): void => stop('cancelled');
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    let spawnError: NodeJS.ErrnoException | undefined;
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (!spawnError && !stopped && code === 0) {
        resolve({ stdout, stderr });
        return;
      }
      const prefix = opts.what ? `${opts.what}: ` : '';
      const noSpace = !stopped && /No space left on device/i.test(stderr);
      let why: string;
      // A full disk in the tool's own words names the host's real (temporary) paths; the caller's
      // `what` already says where in the datastore, so the line says only why.
      if (noSpace) why = `${file}: no space left on the destination filesystem`;
      else if (spawnError?.code === 'ENOENT') why = `${file} is not installed (not found in PATH)`;
      else if (stopped === 'cancelled') why = `${file} was cancelled`;
      else if (stopped === 'timeout') why = `${file} timed out after ${timeoutMs} ms`;
      else if (stopped === 'output') why = `${file} printed more than ${MAX_TOOL_OUTPUT_BYTES} bytes`;
      else
        why = `${file} failed: ${oneLine(opts.stderrNoise ? stderr.replace(opts.stderrNoise, ' ') : stderr) || (spawnError ? oneLine(spawnError.message) : `exit ${code ?? signal}`)}`;
      const reason = noSpace ? 'NO_SPACE' : 'TOOL_FAILED';
      reject(new StorageError(reason, `${prefix}${why}`, { cause: spawnError ?? { code, signal } }));
    });
  });
}
