import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { ShimKind } from '../../../common/src/drivers/driver-actions.js';

export interface ActionRun {
  command: string;
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** How long one shim call may take in the demo and the tests before it is killed. */
const ACTION_TIMEOUT_MS = 120_000;

/**
 * Runs an installed shim the way oned's driver process does: as a process, argv as given, stdin
 * piped (TM transfer actions get none), stdout and stderr captured, the exit code returned.
 */
export function runAction(
  remotesDir: string,
  kind: ShimKind,
  driver: string,
  action: string,
  args: readonly string[],
  stdin?: string | Buffer,
  env?: NodeJS.ProcessEnv,
): Promise<ActionRun> {
  const file = join(remotesDir, kind, driver, action);
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: ACTION_TIMEOUT_MS,
      env: env ?? process.env,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      resolve({
        command: `${kind}/${driver}/${action} ${args.join(' ')}`,
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: Number(process.hrtime.bigint() - started) / 1e6,
      });
    });
    child.stdin.on('error', () => undefined); // a shim that exits before reading stdin is not our failure
    child.stdin.end(stdin ?? '');
  });
}
