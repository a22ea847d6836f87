// MakeDir's `made` and RemoveEmptyDirs through a real gRPC client over mutual TLS: what a failed
// action made goes again, and nothing that was there before or that holds anything.
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { call, failure, ds } from '../../test/support/agent/agent-fixture.js';
import { repeat, useAgentServer } from '../../test/support/agent/server-test-fixture.js';

const ctx = useAgentServer();

const makeDir = (path: string) => call(ctx.client.makeDir.bind(ctx.client), { path });
const removeEmptyDirs = (paths: string[]) => call(ctx.client.removeEmptyDirs.bind(ctx.client), { paths });

describe('MakeDir reports what it made; RemoveEmptyDirs takes exactly that away', () => {
  it('names every directory it created, outermost first, and a repeat removes nothing more', async () => {
    const made = await makeDir(ds('100/7/disk.0.snap'));
    expect(made).toEqual({ created: true, made: [ds('100'), ds('100/7'), ds('100/7/disk.0.snap')] });
    const results = await repeat(() => removeEmptyDirs(made.made));
    expect(results).toEqual([
      { removed: [ds('100/7/disk.0.snap'), ds('100/7'), ds('100')] },
      { removed: [] },
      { removed: [] },
    ]);
    expect(existsSync(ctx.local('100'))).toBe(false);
    expect(existsSync(ctx.local('0'))).toBe(true);
  });

  it('keeps a directory that holds anything, and every listed directory above it', async () => {
    const made = await makeDir(ds('101/8'));
    writeFileSync(ctx.local('101/8/disk.1'), 'another call wrote this');
    mkdirSync(ctx.local('101/9'));
    expect(await removeEmptyDirs([...made.made, ds('101/9')])).toEqual({ removed: [ds('101/9')] });
    expect(readFileSync(ctx.local('101/8/disk.1'), 'utf8')).toBe('another call wrote this');
  });

  it('never removes a datastore root, a symlink or a file in a listed place', async () => {
    mkdirSync(ctx.local('102/empty'), { recursive: true });
    symlinkSync(ctx.local('102/empty'), ctx.local('102/link'));
    writeFileSync(ctx.local('102/file'), '');
    const r = await removeEmptyDirs([ds(''), ds('102/link'), ds('102/file')]);
    expect(r).toEqual({ removed: [] });
    expect(existsSync(ctx.local('102/link'))).toBe(true);
    expect(existsSync(ctx.local('102/empty'))).toBe(true);
    expect(existsSync(ctx.local('102/file'))).toBe(true);
  });

  it('refuses a path outside the roots or with .. before removing anything', async () => {
    mkdirSync(ctx.local('103/empty'), { recursive: true });
    for (const [bad, reason] of [
      ['/tmp', 'PATH_OUTSIDE_ROOTS'],
      [ds('103/../0'), 'UNSAFE_PATH'],
    ] as const) {
      const err = await failure(removeEmptyDirs([ds('103/empty'), bad]));
      expect(err.reason).toBe(reason);
      expect(err.code).toBe(
        reason === 'UNSAFE_PATH' ? grpc.status.INVALID_ARGUMENT : grpc.status.PERMISSION_DENIED,
      );
    }
    expect(existsSync(ctx.local('103/empty'))).toBe(true);
  });
});
