import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { ActionRun } from '../../../cli/src/demo/run-action.js';

/**
 * Starts the installed TM clone shim as oned runs it and resolves with how it ended; rejects (after
 * killing it, by its PID) when it has not ended within `deadlineMs`: a hang.
 */
export function startClone(
  remotesDir: string,
  args: readonly string[],
  deadlineMs: number,
): Promise<ActionRun> {
  const child = spawn(join(remotesDir, 'tm', 'grpc', 'clone'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`clone ${args.join(' ')} did not end within ${deadlineMs} ms`));
    }, deadlineMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ command: 'clone', code: code ?? 1, stdout: out, stderr: err, ms: Date.now() - started });
    });
  });
}
