import { describe, expect, it } from 'vitest';
import { OperatorCancelError, RunningCalls, type ProgressJournal } from './running-calls.js';
import { ShimDisconnectedError } from '../shim-server/shim-call.js';

function journal(): ProgressJournal & { cancelled: Array<[string, string]>; progress: number[] } {
  let next = 1;
  const j = {
    cancelled: [] as Array<[string, string]>,
    progress: [] as number[],
    beginStep: () => next++,
    endStep: () => {},
    stepProgress: (id: number) => void j.progress.push(id),
    markCancelled: (requestId: string, by: string) => void j.cancelled.push([requestId, by]),
  };
  return j;
}

const isOned = (reason: unknown): boolean => reason instanceof ShimDisconnectedError;

describe('RunningCalls', () => {
  it('cancels a call by its full id or a prefix of 8+ characters, once, and says who', () => {
    const j = journal();
    const calls = new RunningCalls(j);
    const a = calls.begin(
      { requestId: 'aaaa1111-x', label: 'tm/grpc/clone' },
      () => {},
      new AbortController().signal,
      isOned,
    );
    expect(calls.cancel('aaaa1111')).toBe('aaaa1111-x');
    expect(a.signal.aborted).toBe(true);
    expect(a.signal.reason).toBeInstanceOf(OperatorCancelError);
    expect(a.cancelledBy()).toBe('operator');
    calls.cancel('aaaa1111-x');
    expect(j.cancelled).toEqual([['aaaa1111-x', 'operator']]);
    a.end();
    expect(() => calls.cancel('aaaa1111-x')).toThrow(/no running job "aaaa1111-x"/);
  });

  it('refuses a short prefix and an ambiguous one, cancelling nothing', () => {
    const calls = new RunningCalls(journal());
    const shim = new AbortController().signal;
    const a = calls.begin({ requestId: 'abcdefgh-1', label: 'x' }, () => {}, shim, isOned);
    const b = calls.begin({ requestId: 'abcdefgh-2', label: 'x' }, () => {}, shim, isOned);
    expect(() => calls.cancel('abc')).toThrow(/first 8 characters or more/);
    expect(() => calls.cancel('abcdefgh')).toThrow(/names several running jobs: abcdefgh-1, abcdefgh-2/);
    expect(a.signal.aborted || b.signal.aborted).toBe(false);
  });

  it("files a call whose shim went away as cancelled by oned, and a coordinator stop as no one's cancel", () => {
    const j = journal();
    const calls = new RunningCalls(j);
    const shim = new AbortController();
    const call = calls.begin({ requestId: 'r1', label: 'x' }, () => {}, shim.signal, isOned);
    shim.abort(new ShimDisconnectedError());
    expect(call.signal.aborted).toBe(true);
    expect(call.cancelledBy()).toBe('oned');
    expect(j.cancelled).toEqual([['r1', 'oned']]);
    const stopping = new AbortController();
    const other = calls.begin({ requestId: 'r2', label: 'x' }, () => {}, stopping.signal, isOned);
    stopping.abort(new Error('the coordinator is shutting down'));
    expect(other.cancelledBy()).toBeUndefined();
    expect(j.cancelled).toHaveLength(1);
  });

  it('tracks steps in flight until they end, and drops progress for a step that ended', () => {
    const j = journal();
    const calls = new RunningCalls(j);
    calls.begin({ requestId: 'r', label: 'x' }, () => {}, new AbortController().signal, isOned);
    const id = calls.beginStep('r', { host: 'host01', rpc: 'receive', args: {} });
    const [step] = calls.stepsInFlight();
    expect(step).toMatchObject({ id, requestId: 'r', host: 'host01', rpc: 'receive' });
    calls.recordProgress(step!, { bytes: 1, total: 2, rate: 1, phase: 'receiving' });
    calls.endStep(id, { outcome: 'success' });
    calls.recordProgress(step!, { bytes: 2, total: 2, rate: 1, phase: 'receiving' });
    expect(j.progress).toEqual([id]);
    expect(calls.stepsInFlight()).toEqual([]);
  });
});
