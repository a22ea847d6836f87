import { describe, expect, it } from 'vitest';
import type { AgentRegistry } from '../agents/agent-registry.js';
import type { CallRecord, StepRecord } from '../journal/journal.js';
import { copiedOrDeleting, moveOf } from './resolve-half-move.js';

const SRC = '/var/lib/one/datastores/0/7';
const call = (action: string, args: unknown, kind = 'tm'): CallRecord =>
  ({ requestId: 'r', kind, driver: 'grpc', action, args }) as CallRecord;
const step = (host: string, rpc: string, args: object, outcome: StepRecord['outcome']): StepRecord =>
  ({ host, rpc, args, outcome }) as StepRecord;
// `fe` is an alias of the front-end's agent.
const agents = { canonical: (h: string) => (h === 'fe' ? 'frontend' : h) } as unknown as AgentRegistry;
const move = { source: { host: 'host01', path: SRC }, destination: { host: 'frontend', path: SRC } };

describe('moveOf', () => {
  it('is the two ends of a directory-level mv, with or without a mixed-mode suffix', () => {
    expect(moveOf(call('mv', [`host01:${SRC}`, `frontend:${SRC}`, '7', '0']))).toEqual(move);
    expect(moveOf(call('mv.ssh', [`host01:${SRC}`, `frontend:${SRC}/`, '7', '0']))).toEqual(move);
  });

  it('is nothing for a disk-level mv, another action, a datastore call or unreadable arguments', () => {
    expect(moveOf(call('mv', [`host01:${SRC}/disk.0`, `frontend:${SRC}/disk.0`, '7', '0']))).toBeUndefined();
    expect(moveOf(call('clone', [`host01:${SRC}`, `frontend:${SRC}`, '7', '0']))).toBeUndefined();
    expect(moveOf(call('mv', [`host01:${SRC}`, `frontend:${SRC}`], 'datastore'))).toBeUndefined();
    expect(moveOf(call('mv', ['host01', 'nowhere']))).toBeUndefined();
    expect(moveOf(call('mv', 'not an array'))).toBeUndefined();
  });
});

describe('copiedOrDeleting', () => {
  it('is true once the copy into the destination succeeded (Receive or Copy), or the source delete began', () => {
    expect(copiedOrDeleting(move, [step('fe', 'receive', { destination: SRC }, 'success')], agents)).toBe(
      true,
    );
    expect(copiedOrDeleting(move, [step('frontend', 'copy', { destination: SRC }, 'success')], agents)).toBe(
      true,
    );
    expect(copiedOrDeleting(move, [step('host01', 'delete', { path: SRC }, 'running')], agents)).toBe(true);
  });

  it('is false while the copy runs or failed, or for a step on another host or path', () => {
    for (const s of [
      step('frontend', 'receive', { destination: SRC }, 'running'),
      step('frontend', 'receive', { destination: SRC }, 'failure'),
      step('host02', 'receive', { destination: SRC }, 'success'),
      step('frontend', 'receive', { destination: `${SRC}x` }, 'success'),
      step('frontend', 'delete', { path: SRC }, 'running'),
      step('host01', 'delete', { path: `${SRC}/.probe-1` }, 'success'),
    ])
      expect(copiedOrDeleting(move, [s], agents), JSON.stringify(s)).toBe(false);
  });
});
