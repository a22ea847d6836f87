import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ShimRequest } from '../../../proto/gen/onestorage/shim/v1/shim.js';
import { handleControlRequest } from './control-request.js';
import { RunningCalls } from './running-calls.js';

const silent = pino({ level: 'silent' });
const journal = { beginStep: () => 1, endStep: () => {}, stepProgress: () => {}, markCancelled: () => {} };
const request = (action: string, args: string[]): ShimRequest => ({
  ...ShimRequest.create(),
  kind: 'control',
  action,
  args,
  requestId: 'x',
});

describe('control requests on the shim socket', () => {
  it('answers ping with the version and the calls running', () => {
    const calls = new RunningCalls(journal);
    calls.begin(
      { requestId: 'r1', label: 'tm/grpc/clone' },
      () => {},
      new AbortController().signal,
      () => false,
    );
    expect(handleControlRequest(request('ping', []), calls, '1.2.3', silent)).toEqual({
      stdout: '{"version":"1.2.3","running":1}\n',
      stderr: [],
      exitCode: 0,
    });
  });

  it('refuses anything else in one line, cancelling nothing', () => {
    const calls = new RunningCalls(journal);
    const call = calls.begin(
      { requestId: 'r1', label: 'x' },
      () => {},
      new AbortController().signal,
      () => false,
    );
    for (const [action, args] of [
      ['delete', ['r1']],
      ['cancel', []],
      ['cancel', ['r1', 'r2']],
      ['ping', ['extra']],
    ] as const) {
      expect(handleControlRequest(request(action, [...args]), calls, '1', silent)).toEqual({
        stdout: '',
        stderr: [`one-storage: unknown control request "${action}" (expected: cancel JOB, or ping)`],
        exitCode: 1,
      });
    }
    expect(call.signal.aborted).toBe(false);
  });
});
