// What every installed shim runs: turn oned's script call (argv, stdin) into one coordinator call and
// play the reply back as oned's script conventions expect (docs/opennebula/driver-protocol.md#script-results): stdout verbatim as the
// result, INFO:/ERROR: lines on stderr for the log, one other stderr line as the error, exit code.
//
// Start-up time is the budget here (oned starts one shim per disk operation and per monitoring
// round), so this file and everything it imports must stay small: node built-ins, the frame and
// codec modules, nothing from node_modules. The runtime is CommonJS (.cts → .cjs) for the same
// reason: node runs a CommonJS graph without starting its ES module loader, which by itself costs a
// shim about 15 ms, a fifth of `node -e 0`.
import type { ShimKind } from '../../common/src/drivers/driver-actions.js';
import { callCoordinator, ShimTransportError } from './call-coordinator.cjs';
import { encodeFrame, MAX_REQUEST_FRAME_BYTES } from '../../common/src/sockets/frame.cjs';
import { readStdin } from './read-stdin.cjs';
import { newRequestId } from './request-id.cjs';
import { encodeShimRequest } from './shim-codec.cjs';

/** Overrides the socket path baked into the installed shims (tests, non-standard layouts). */
export const SOCKET_PATH_ENV = 'ONE_STORAGE_SOCKET';

/** Exit code for a call that did not get a reply: oned treats any non-zero code as FAILURE. */
export const EXIT_SHIM_FAILURE = 1;
/** A process exit status is one byte; anything outside is truncated by the kernel (256 → 0). */
const MAX_EXIT_CODE = 255;

export interface RunShimOptions {
  kind: ShimKind;
  driver: string;
  action: string;
  /** Used unless ONE_STORAGE_SOCKET is set. */
  socketPath: string;
}

/** Run one driver action through the coordinator; resolves with the exit code for the process. */
export async function runShim(opts: RunShimOptions): Promise<number> {
  // `||`, not `??`: an empty ONE_STORAGE_SOCKET means unset, as in a shell.
  const socketPath = process.env[SOCKET_PATH_ENV] || opts.socketPath;
  const requestId = newRequestId();
  try {
    const stdin = await readStdin();
    const request = encodeShimRequest({
      kind: opts.kind,
      driver: opts.driver,
      action: opts.action,
      args: process.argv.slice(2),
      stdin,
      requestId,
      pid: process.pid,
    });
    const reply = await callCoordinator({
      socketPath,
      frame: encodeFrame(request, MAX_REQUEST_FRAME_BYTES),
      requestId,
      onLog: writeStderrLine,
    });
    process.stdout.write(reply.stdout);
    for (const line of reply.stderr) writeStderrLine(line);
    return exitStatus(reply.exitCode);
  } catch (err) {
    writeStderrLine(
      err instanceof ShimTransportError
        ? err.message
        : `one-storage: shim ${opts.kind}/${opts.driver}/${opts.action} failed: ${firstLine(err)}`,
    );
    return EXIT_SHIM_FAILURE;
  }
}

/** oned joins every non-log stderr line into the error message: ours must be one line. */
function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err).split('\n')[0] ?? '';
}

/** A reply's exit code as a process status; out-of-range codes must not wrap round to success. */
function exitStatus(code: number): number {
  return Number.isInteger(code) && code >= 0 && code <= MAX_EXIT_CODE ? code : EXIT_SHIM_FAILURE;
}

/** oned splits stderr into lines; a line must end in exactly one newline to stay one line. */
function writeStderrLine(line: string): void {
  process.stderr.write(line.endsWith('\n') ? line : `${line}\n`);
}
