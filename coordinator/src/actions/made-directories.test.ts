import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import type { ActionContext } from './action-context.js';
import { withMadeDirectories } from './made-directories.js';

interface Sent {
  host: string;
  method: string;
  request: unknown;
  detached: boolean;
}

/**
 * Just what MadeDirectories uses of an ActionContext: agent calls (answered by `answer`, recorded
 * with whether they were detached from the action's cancel) and a logger that keeps its warnings.
 */
function fakeContext(
  answer: (method: string, request: unknown) => unknown,
  /** Whether an agent that stopped answering connects again when the undo tries it. */
  connectsAgain = false,
): {
  ctx: ActionContext;
  sent: Sent[];
  warnings: string[];
} {
  const sent: Sent[] = [];
  const warnings: string[] = [];
  const send = (detached: boolean) => (host: string, method: string, request: unknown) => {
    sent.push({ host, method, request, detached });
    return Promise.resolve().then(() => answer(method, request));
  };
  const ctx = {
    ops: { call: send(false), callDetached: send(true), unreachable: new Set<string>() },
    agents: {
      canonical: (h: string) => h,
      get: () => ({ ready: () => (connectsAgain ? Promise.resolve() : Promise.reject(new Error('silent'))) }),
    },
    logger: { info: () => undefined, warn: (_o: unknown, msg: string) => warnings.push(msg) },
  } as unknown as ActionContext;
  return { ctx, sent, warnings };
}

const made = (request: unknown): unknown => ({
  created: true,
  made: [(request as { path: string }).path],
});
const noSpace = new StorageError('NO_SPACE', 'receive host01:/ds/0/7/disk.0: no space left on device');

describe('withMadeDirectories', () => {
  it('on failure removes what was made, detached from the cancel, and rethrows the original error', async () => {
    const { ctx, sent } = fakeContext((m, r) => (m === 'makeDir' ? made(r) : { removed: [] }));
    const run = withMadeDirectories(ctx, async (dirs) => {
      await dirs.make({ host: 'host01', path: '/ds/0/7' });
      dirs.writes({ host: 'host01', path: '/ds/0/7/disk.0' });
      throw noSpace;
    });
    await expect(run).rejects.toBe(noSpace);
    expect(sent.slice(1)).toEqual([
      { host: 'host01', method: 'delete', request: { path: '/ds/0/7/disk.0' }, detached: true },
      { host: 'host01', method: 'removeEmptyDirs', request: { paths: ['/ds/0/7'] }, detached: true },
    ]);
  });

  it('a cleanup that fails is logged; oned still sees the original error', async () => {
    const { ctx, warnings } = fakeContext((m, r) => {
      if (m === 'makeDir') return made(r);
      throw new StorageError('AGENT_UNAVAILABLE', 'agent host01 is unreachable');
    });
    const run = withMadeDirectories(ctx, async (dirs) => {
      await dirs.make({ host: 'host01', path: '/ds/0/7' });
      throw noSpace;
    });
    await expect(run).rejects.toBe(noSpace);
    expect(warnings).toEqual(['could not remove the directories a failed action made on host01:/ds/0/7']);
  });

  it('undoes nothing on a host that stopped answering during the call (a partition): no wait on its deadlines', async () => {
    const { ctx, sent, warnings } = fakeContext((m, r) => (m === 'makeDir' ? made(r) : { removed: [] }));
    const run = withMadeDirectories(ctx, async (dirs) => {
      await dirs.make({ host: 'host01', path: '/ds/0/7' });
      await dirs.make({ host: 'frontend', path: '/ds/1/x' });
      dirs.writes({ host: 'host01', path: '/ds/0/7/disk.0' });
      ctx.ops.unreachable.add('host01');
      throw noSpace;
    });
    await expect(run).rejects.toBe(noSpace);
    expect(sent.slice(2).map((s) => `${s.host} ${s.method}`)).toEqual(['frontend removeEmptyDirs']);
    expect(warnings).toEqual([
      'host01 is not answering: nothing undone there after the failed action (host01:/ds/0/7/disk.0 not deleted)',
      'host01 is not answering: nothing undone there after the failed action (the directories it made not removed: /ds/0/7)',
    ]);
  });

  it('undoes on a host that stopped answering but connects again (an agent restarted)', async () => {
    const { ctx, sent, warnings } = fakeContext(
      (m, r) => (m === 'makeDir' ? made(r) : { removed: [] }),
      true,
    );
    const run = withMadeDirectories(ctx, async (dirs) => {
      await dirs.make({ host: 'host01', path: '/ds/0/7' });
      ctx.ops.unreachable.add('host01');
      throw noSpace;
    });
    await expect(run).rejects.toBe(noSpace);
    expect(sent.slice(1).map((s) => `${s.host} ${s.method}`)).toEqual(['host01 removeEmptyDirs']);
    expect(warnings).toEqual([]);
  });

  it('removes nothing when nothing was made or nothing failed', async () => {
    const { ctx, sent } = fakeContext(() => ({ created: false, made: [] }));
    await expect(
      withMadeDirectories(ctx, async (dirs) => {
        await dirs.make({ host: 'host01', path: '/ds/0/7' });
        throw noSpace;
      }),
    ).rejects.toBe(noSpace);
    const ok = fakeContext((_m, r) => made(r));
    await withMadeDirectories(ok.ctx, (dirs) => dirs.make({ host: 'host01', path: '/ds/0/8' }));
    expect([...sent, ...ok.sent].map((s) => s.method)).toEqual(['makeDir', 'makeDir']);
  });
});
