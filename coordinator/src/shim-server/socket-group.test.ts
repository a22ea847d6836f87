import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { resolveSocketGroup } from './socket-group.js';

/** The host's gid for a group name, or undefined (the default's answer depends on it). */
const gidOf = (name: string): number | undefined => {
  try {
    return Number(execFileSync('getent', ['group', name]).toString().split(':')[2]);
  } catch {
    return undefined;
  }
};

describe('resolveSocketGroup', () => {
  it.each([
    ['a gid', '4242', 4242],
    ['a group name', 'root', 0],
  ])('takes %s', async (_what, configured, gid) => {
    expect(await resolveSocketGroup(configured, 'c.yaml')).toBe(gid);
  });

  it('refuses a configured group that does not exist, naming the key', async () => {
    await expect(resolveSocketGroup('no-such-group-x', 'c.yaml')).rejects.toThrow(
      'config c.yaml: socketGroup: no group "no-such-group-x" on this host',
    );
  });

  it("defaults to oneadmin's group, else the process's own", async () => {
    expect(await resolveSocketGroup(undefined, 'c.yaml')).toBe(gidOf('oneadmin') ?? process.getgid?.());
  });
});
