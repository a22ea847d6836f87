import { userInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseCoordinatorConfig } from './config.js';

const valid = {
  socket: '/run/one-storage/coordinator.sock',
  journal: '/var/lib/one-storage/journal.db',
  frontend: 'frontend',
  oned: { endpoint: '127.0.0.1:2634', auth: '/var/lib/one/.one/one_auth' },
  agents: { frontend: { endpoint: '127.0.0.1:7000' }, host01: { endpoint: '10.0.0.5:7001', certName: 'h1' } },
  tls: { ca: '/pki/ca.crt', cert: '/pki/coordinator.crt', key: '/pki/coordinator.key' },
};

const withChange = (path: string[], value: unknown): unknown => {
  const copy = structuredClone(valid) as Record<string, unknown>;
  let at = copy;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
  at[path[path.length - 1] as string] = value;
  return copy;
};

describe('coordinator config', () => {
  it('parses a valid config with defaults', () => {
    const c = parseCoordinatorConfig(valid, 'c.yaml');
    expect(c.socketMode).toBe(0o660);
    expect(c.socketGroup).toBeUndefined();
    expect(parseCoordinatorConfig({ ...valid, socketGroup: 'oneadmin' }, 'c.yaml').socketGroup).toBe(
      'oneadmin',
    );
    expect(c.datastoreLocation).toBe('/var/lib/one/datastores');
    expect(c.agents.get('host01')).toEqual({ name: 'host01', endpoint: '10.0.0.5:7001', certName: 'h1' });
    expect(c.agents.get('frontend')?.certName).toBe('frontend');
    expect(c.deadlines.controlMs).toBeGreaterThan(0);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('pings the agents every 20 s and drops a silent one after 10 s unless keepalive says otherwise', () => {
    expect(parseCoordinatorConfig(valid, 'c.yaml').keepalive).toEqual({
      intervalMs: 20_000,
      timeoutMs: 10_000,
    });
    const set = parseCoordinatorConfig(
      { ...valid, keepalive: { intervalSeconds: 5, timeoutSeconds: 2 } },
      'c.yaml',
    );
    expect(set.keepalive).toEqual({ intervalMs: 5_000, timeoutMs: 2_000 });
    expect(() => parseCoordinatorConfig({ ...valid, keepalive: { intervalSeconds: 0 } }, 'c.yaml')).toThrow(
      /keepalive\.intervalSeconds/,
    );
  });

  it("defaults the implicit RESTRICTED_DIRS to OpenNebula's, with this user's home", () => {
    const dirs = parseCoordinatorConfig(valid, 'c.yaml').imageDatastore.implicitRestrictedDirs;
    expect(dirs.slice(0, 2)).toEqual(['/var/lib/one/', '/etc/one/']);
    expect(dirs[2]).toBe(`${userInfo().homedir.replace(/\/+$/, '')}/`);
    const set = parseCoordinatorConfig(
      { ...valid, imageDatastore: { implicitRestrictedDirs: ['/opt/one/var/'] } },
      'c.yaml',
    );
    expect(set.imageDatastore.implicitRestrictedDirs).toEqual(['/opt/one/var/']);
  });

  it.each([
    [['socket'], 'run/x.sock', 'config c.yaml: socket: must be an absolute path'],
    [['frontend'], 'fe', 'config c.yaml: frontend: names "fe", which is not one of the agents'],
    [
      ['agents', 'host01', 'endpoint'],
      'host01',
      'config c.yaml: agents.host01.endpoint: must be host:port, got "host01"',
    ],
    [['agents', 'host01', 'port'], 7001, 'config c.yaml: agents.host01.port: unknown setting'],
    [['oned', 'deadlineMs'], 'soon', 'config c.yaml: oned.deadlineMs: must be an integer'],
    [['tls', 'key'], undefined, 'config c.yaml: tls.key: must be a non-empty string'],
    [['frontendAliases'], 'fe', 'config c.yaml: frontendAliases: must be a list of non-empty strings'],
    [['journl'], '/x', 'config c.yaml: journl: unknown setting'],
    [['socketGroup'], 'one admin', 'config c.yaml: socketGroup: "one admin" is not a group name or gid'],
    [
      ['imageDatastore'],
      { implicitRestrictedDirs: ['etc/one'] },
      'config c.yaml: imageDatastore.implicitRestrictedDirs: "etc/one" is not an absolute path',
    ],
    [
      ['imageDatastore'],
      { restrictedDirs: ['/etc/one'] },
      'config c.yaml: imageDatastore.restrictedDirs: unknown setting',
    ],
  ])('%j = %j → %s', (path, value, message) => {
    expect(() => parseCoordinatorConfig(withChange(path, value), 'c.yaml')).toThrowError(message);
  });

  it('refuses a config that is not a mapping', () => {
    expect(() => parseCoordinatorConfig(['x'], 'c.yaml')).toThrowError(
      'config c.yaml: must be a mapping of settings',
    );
  });
});
