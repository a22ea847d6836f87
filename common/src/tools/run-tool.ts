import { execFile } from 'node:child_process';
import { StorageError, oneLine } from '../errors.js';

/** Default limit for any external tool: a stuck qemu-img must not hold an action forever. */
export const DEFAULT_TOOL_TIMEOUT_MS = 10 * 60_000;
/** Tools print little; this only guards memory against a runaway. */
const MAX_TOOL_OUTPUT_BYTES = 64 * 1024 * 1024;

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
}

/**
 * Runs an external tool with an argument array (never a shell string), LANG=C so its messages are
 * parseable, a timeout, and the caller's abort signal, so a cancelled call kills its qemu-img.
 * A missing tool or a non-zero exit becomes a one-line TOOL_FAILED error with the tool's stderr.
 */
export function runTool(file: string, args: readonly string[], opts: ToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        env: { ...process.env, LANG: 'C', LC_ALL: 'C' },
        timeout: opts.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS,
        maxBuffer: MAX_TOOL_OUTPUT_BYTES,
        encoding: 'utf8',
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.cwd ? { cwd: opts.cwd } : {}),
      },
      (err, stdout, stderr) => {
        if (!err) {
          resolve({ stdout, stderr });
          return;
        }
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number };
        const prefix = opts.what ? `${opts.what}: ` : '';
        let why: string;
        if (e.code === 'ENOENT') why = `${file} is not installed (not found in PATH)`;
        else if (e.name === 'AbortError') why = `${file} was cancelled`;
        else if (e.killed) why = `${file} timed out after ${opts.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS} ms`;
        else why = `${file} failed: ${oneLine(stderr) || oneLine(e.message)}`;
        const reason = /No space left on device/i.test(stderr) ? 'NO_SPACE' : 'TOOL_FAILED';
        reject(new StorageError(reason, `${prefix}${why}`, { cause: err }));
      },
    );
  });
}
