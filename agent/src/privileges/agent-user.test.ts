import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { parseAgentConfig } from '../config.js';
import { planPrivileges } from './agent-user.js';

const SOURCE = '/etc/one-storage/agent.yaml';
/** A user every Debian and RHEL system has, never root. */
const OTHER = 'nobody';
const [, , otherUid, otherGid] = execFileSync('getent', ['passwd', OTHER], { encoding: 'utf8' }).split(':');
const other = { uid: Number(otherUid), gid: Number(otherGid) };
const ROOT = { uid: 0, gid: 0 };

function config(settings: Record<string, unknown> = {}) {
  return parseAgentConfig(
    {
      name: 'host01',
      listen: '127.0.0.1:7001',
      roots: [{ location: '/var/lib/one/datastores' }],
      tls: { ca: '/etc/pki/ca.crt', cert: '/etc/pki/host01.crt', key: '/etc/pki/host01.key' },
      ...settings,
    },
    SOURCE,
  );
}

async function refusal(promise: Promise<unknown>): Promise<StorageError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

describe('planPrivileges', () => {
  it('without user: root runs as root (and warns), anyone else keeps who it is', async () => {
    expect(await planPrivileges(config(), ROOT)).toEqual({ kind: 'root' });
    expect(await planPrivileges(config(), other)).toEqual({ kind: 'keep' });
  });

  it('root with user drops to that user, its primary group and its home', async () => {
    const plan = await planPrivileges(config({ user: OTHER }), ROOT);
    expect(plan).toMatchObject({ kind: 'drop', user: { name: OTHER, uid: other.uid, gid: other.gid } });
  });

  it('group overrides the primary group', async () => {
    const plan = await planPrivileges(config({ user: OTHER, group: 'root' }), ROOT);
    expect(plan).toMatchObject({ kind: 'drop', user: { uid: other.uid, gid: 0 } });
  });

  it('started as the user itself keeps running; user root as root too', async () => {
    expect(await planPrivileges(config({ user: OTHER }), other)).toEqual({ kind: 'keep' });
    expect(await planPrivileges(config({ user: 'root' }), ROOT)).toEqual({ kind: 'keep' });
  });

  it('refuses another non-root user, naming user, and another group, naming group', async () => {
    const asSomeoneElse = await refusal(planPrivileges(config({ user: OTHER }), { uid: 54321, gid: 54321 }));
    expect(asSomeoneElse.reason).toBe('CONFIG_INVALID');
    expect(asSomeoneElse.message).toBe(
      `config ${SOURCE}: user: the agent runs as uid 54321, neither root nor "${OTHER}" (uid ${other.uid}): start it as root or as ${OTHER}`,
    );
    const wrongGroup = await refusal(planPrivileges(config({ user: OTHER, group: 'root' }), other));
    expect(wrongGroup.message).toMatch(/^config \S+: group: the agent runs with gid \d+, not root \(gid 0\)/);
  });

  it('refuses a user or group the host does not know, naming the key', async () => {
    const user = await refusal(planPrivileges(config({ user: 'no-such-user-9' }), ROOT));
    expect(user.message).toBe(`config ${SOURCE}: user: no user "no-such-user-9" on this host`);
    const group = await refusal(planPrivileges(config({ user: OTHER, group: 'no-such-group-9' }), ROOT));
    expect(group.message).toBe(`config ${SOURCE}: group: no group "no-such-group-9" on this host`);
  });
});
