// CreateProbe never creates its file outside the roots: not through a directory that is a symlink
// out of them, and not through a directory (or an ancestor) swapped for one after the path was
// confined (the race writeProbe closes by working through a verified descriptor).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, realpathSync, renameSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { call, failure, ds } from '../../../test/support/agent/agent-fixture.js';
import { useAgentServer } from '../../../test/support/agent/server-test-fixture.js';
import { writeProbe } from './create-probe.js';

const ctx = useAgentServer();

const probeName = (): string => `.probe-${randomBytes(16).toString('hex')}`;

/** A directory outside the served root (beside it, in the test's base directory). */
function outside(name: string): string {
  const dir = join(ctx.base, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

describe('CreateProbe and symlinks out of the roots', () => {
  it('refuses a dir that is a symlink to outside the roots (PATH_OUTSIDE_ROOTS) and creates nothing there', async () => {
    const target = outside('escape-static');
    symlinkSync(target, ctx.local('0/escape'));
    const err = await failure(
      call(ctx.client.createProbe.bind(ctx.client), { dir: ds('0/escape'), name: probeName() }),
    );
    expect(err).toMatchObject({ code: grpc.status.PERMISSION_DENIED, reason: 'PATH_OUTSIDE_ROOTS' });
    expect(readdirSync(target)).toEqual([]);
  });

  it('refuses a confined directory swapped for a symlink out of the roots before the probe is made', async () => {
    mkdirSync(ctx.local('0/50'));
    const confined = realpathSync(ctx.local('0/50'));
    const target = outside('escape-swapped');
    renameSync(confined, ctx.local('0/50-aside'));
    symlinkSync(target, confined);
    await expect(writeProbe(confined, probeName(), `host01:${ds('0/50')}`)).rejects.toMatchObject({
      reason: 'PATH_OUTSIDE_ROOTS',
      message: expect.stringMatching(
        /^create probe in host01:\/var\/lib\/one\/datastores\/0\/50: /,
      ) as unknown,
    });
    expect(readdirSync(target)).toEqual([]);
  });

  it('refuses a confined directory whose ancestor was swapped for a symlink out of the roots', async () => {
    mkdirSync(ctx.local('0/51/vm'), { recursive: true });
    const confined = realpathSync(ctx.local('0/51/vm'));
    const target = outside('escape-ancestor');
    mkdirSync(join(target, 'vm'));
    renameSync(ctx.local('0/51'), ctx.local('0/51-aside'));
    symlinkSync(target, ctx.local('0/51'));
    await expect(writeProbe(confined, probeName(), `host01:${ds('0/51/vm')}`)).rejects.toMatchObject({
      reason: 'PATH_OUTSIDE_ROOTS',
    });
    expect(readdirSync(join(target, 'vm'))).toEqual([]);
  });

  it('still makes the probe in a directory reached through a symlink inside the roots', async () => {
    symlinkSync('../1', ctx.local('0/inside'));
    const name = probeName();
    const r = await call(ctx.client.createProbe.bind(ctx.client), { dir: ds('0/inside'), name });
    expect(r).toEqual({ path: ds(`0/inside/${name}`), created: true });
    expect(readdirSync(ctx.local('1'))).toContain(name);
  });
});
