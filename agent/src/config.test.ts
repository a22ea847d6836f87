import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../common/src/errors.js';
import { loadAgentConfig, parseAgentConfig } from './config.js';

const SOURCE = '/etc/one-storage/agent.yaml';

function valid(): Record<string, unknown> {
  return {
    name: 'host01',
    listen: '127.0.0.1:7001',
    roots: [{ location: '/var/lib/one/datastores' }],
    tls: { ca: '/etc/pki/ca.crt', cert: '/etc/pki/host01.crt', key: '/etc/pki/host01.key' },
  };
}

function errorOf(fn: () => unknown): StorageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError);
    return err as StorageError;
  }
  throw new Error('expected an error');
}

describe('parseAgentConfig', () => {
  it('applies defaults and freezes the result', () => {
    const c = parseAgentConfig(valid(), SOURCE);
    expect(c).toEqual({
      source: SOURCE,
      name: 'host01',
      listen: '127.0.0.1:7001',
      data: { listen: '127.0.0.1:0', encryption: 'tls', rateLimitBytesPerSecond: 0, idleTimeoutMs: 120_000 },
      keepalive: { intervalMs: 20_000, timeoutMs: 10_000 },
      roots: [{ location: '/var/lib/one/datastores', path: '/var/lib/one/datastores' }],
      tls: { ca: '/etc/pki/ca.crt', cert: '/etc/pki/host01.crt', key: '/etc/pki/host01.key' },
      libvirt: { uri: 'qemu:///system', enabled: true },
      imports: { dirs: ['/var/tmp'] },
      log: { level: 'info' },
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.imports.dirs)).toBe(true);
    expect(Object.isFrozen(c.roots[0])).toBe(true);
    expect(Object.isFrozen(c.tls)).toBe(true);
  });

  it('reads every optional section', () => {
    const c = parseAgentConfig(
      {
        ...valid(),
        listen: '[::1]:7001',
        data: { listen: '0.0.0.0:7101', advertise: '10.0.0.5' },
        roots: [{ location: '/var/lib/one/datastores', path: '/srv/datastores' }, { location: '/backups' }],
        monitord: { address: '10.0.0.1', port: 4125 },
        log: { level: 'debug' },
      },
      SOURCE,
    );
    expect(c.data).toEqual({
      listen: '0.0.0.0:7101',
      advertise: '10.0.0.5',
      encryption: 'tls',
      rateLimitBytesPerSecond: 0,
      idleTimeoutMs: 120_000,
    });
    expect(c.roots[0]).toEqual({ location: '/var/lib/one/datastores', path: '/srv/datastores' });
    expect(c.monitord).toEqual({ address: '10.0.0.1', port: 4125 });
    expect(c.log.level).toBe('debug');
  });

  it('reads user and group (the account the agent runs as)', () => {
    expect(parseAgentConfig({ ...valid(), user: 'oneadmin' }, SOURCE)).toMatchObject({ user: 'oneadmin' });
    const c = parseAgentConfig({ ...valid(), user: 'oneadmin', group: 'oneadmin' }, SOURCE);
    expect([c.user, c.group]).toEqual(['oneadmin', 'oneadmin']);
  });

  it('defaults the data listener to the gRPC host, keeping IPv6 brackets', () => {
    expect(parseAgentConfig({ ...valid(), listen: '[::1]:7001' }, SOURCE).data.listen).toBe('[::1]:0');
    expect(parseAgentConfig({ ...valid(), data: {} }, SOURCE).data.listen).toBe('127.0.0.1:0');
  });

  it('reads data.encryption: tls by default, none for the authenticated plaintext mode', () => {
    expect(parseAgentConfig({ ...valid(), data: {} }, SOURCE).data.encryption).toBe('tls');
    expect(parseAgentConfig({ ...valid(), data: { encryption: 'tls' } }, SOURCE).data.encryption).toBe('tls');
    expect(parseAgentConfig({ ...valid(), data: { encryption: 'none' } }, SOURCE).data).toEqual({
      listen: '127.0.0.1:0',
      encryption: 'none',
      rateLimitBytesPerSecond: 0,
      idleTimeoutMs: 120_000,
    });
  });

  it('reads data.idleTimeoutSeconds and keepalive (how soon a partition is noticed)', () => {
    const c = parseAgentConfig(
      { ...valid(), data: { idleTimeoutSeconds: 5 }, keepalive: { intervalSeconds: 2, timeoutSeconds: 3 } },
      SOURCE,
    );
    expect([c.data.idleTimeoutMs, c.keepalive]).toEqual([5_000, { intervalMs: 2_000, timeoutMs: 3_000 }]);
  });

  it('reads data.rateLimitBytesPerSecond: 0 (unlimited) by default', () => {
    expect(parseAgentConfig(valid(), SOURCE).data.rateLimitBytesPerSecond).toBe(0);
    const limited = { ...valid(), data: { rateLimitBytesPerSecond: 100 * 1024 * 1024 } };
    expect(parseAgentConfig(limited, SOURCE).data.rateLimitBytesPerSecond).toBe(100 * 1024 * 1024);
  });

  it('defaults monitord address and port inside the section', () => {
    expect(parseAgentConfig({ ...valid(), monitord: {} }, SOURCE).monitord).toEqual({
      address: '127.0.0.1',
      port: 4124,
    });
  });

  it('has no export listener unless export is set; export.ttlSeconds defaults to an hour', () => {
    expect(parseAgentConfig(valid(), SOURCE).export).toBeUndefined();
    expect(parseAgentConfig({ ...valid(), export: { listen: '0.0.0.0:7201' } }, SOURCE).export).toEqual({
      listen: '0.0.0.0:7201',
      ttlSeconds: 3600,
    });
  });

  it.each([
    ['host01.example.org:7201', 'https://host01.example.org:7201'],
    ['[2001:db8::5]:7201', 'https://[2001:db8::5]:7201'],
    ['https://export.example.org', 'https://export.example.org'],
    ['https://export.example.org:8443/', 'https://export.example.org:8443'],
    ['https://proxy.example.org/one/host01/', 'https://proxy.example.org/one/host01'],
  ])('reads export.advertise %s as the URL base %s', (advertise, base) => {
    const c = parseAgentConfig(
      { ...valid(), export: { listen: '0.0.0.0:7201', advertise, ttlSeconds: 600 } },
      SOURCE,
    );
    expect(c.export).toEqual({ listen: '0.0.0.0:7201', advertise: base, ttlSeconds: 600 });
  });

  const tls = valid()['tls'] as Record<string, unknown>;
  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['missing name', { name: undefined }, 'name: must be a non-empty string'],
    ['name with a space', { name: 'host 01' }, 'name: must be a hostname'],
    ['missing listen', { listen: undefined }, 'listen: must be a non-empty string'],
    ['listen without port', { listen: '127.0.0.1' }, 'listen: must be host:port'],
    ['listen port too big', { listen: '127.0.0.1:70000' }, 'listen: must be host:port'],
    ['user not a name', { user: 'one admin' }, 'user: must be a user name'],
    ['user a number', { user: 9869 }, 'user: must be a non-empty string'],
    ['group without user', { group: 'oneadmin' }, 'group: needs user'],
    ['group not a name', { user: 'oneadmin', group: '../x' }, 'group: must be a group name'],
    ['data not a mapping', { data: 'x' }, 'data: must be a mapping'],
    ['data.listen bad', { data: { listen: 'nowhere' } }, 'data.listen: must be host:port'],
    [
      'data.advertise with port',
      { data: { advertise: '10.0.0.5:7101' } },
      'data.advertise: must be a host name',
    ],
    ['data unknown key', { data: { port: 1 } }, 'data.port: unknown setting'],
    [
      'data.encryption unknown',
      { data: { encryption: 'aes' } },
      'data.encryption: must be one of tls, none, got "aes"',
    ],
    [
      'data.encryption not a string',
      { data: { encryption: false } },
      'data.encryption: must be a non-empty string',
    ],
    [
      'data.rateLimitBytesPerSecond too small',
      { data: { rateLimitBytesPerSecond: 1000 } },
      'data.rateLimitBytesPerSecond: must be 0 (unlimited) or at least 65536 (64 KiB/s), got 1000',
    ],
    [
      'data.idleTimeoutSeconds shorter than a throttled pause',
      { data: { rateLimitBytesPerSecond: 65536, idleTimeoutSeconds: 10 } },
      'data.idleTimeoutSeconds: must be at least 32 at data.rateLimitBytesPerSecond 65536',
    ],
    ['data.idleTimeoutSeconds zero', { data: { idleTimeoutSeconds: 0 } }, 'data.idleTimeoutSeconds: must be'],
    ['keepalive unknown key', { keepalive: { timeMs: 1 } }, 'keepalive.timeMs: unknown setting'],
    [
      'keepalive.timeoutSeconds zero',
      { keepalive: { timeoutSeconds: 0 } },
      'keepalive.timeoutSeconds: must be',
    ],
    [
      'data.rateLimitBytesPerSecond not an integer',
      { data: { rateLimitBytesPerSecond: '10M' } },
      'data.rateLimitBytesPerSecond: must be an integer',
    ],
    ['roots missing', { roots: undefined }, 'roots: must be a non-empty list'],
    ['roots empty', { roots: [] }, 'roots: must be a non-empty list'],
    ['roots item not a mapping', { roots: ['/var'] }, 'roots[0]: must be a mapping'],
    [
      'root location relative',
      { roots: [{ location: 'var/lib' }] },
      'roots[0].location: must be an absolute path',
    ],
    [
      'root location trailing slash',
      { roots: [{ location: '/var/lib/' }] },
      'roots[0].location: must be written as oned',
    ],
    [
      'root location with ..',
      { roots: [{ location: '/var/../lib' }] },
      'roots[0].location: must be written as oned',
    ],
    [
      'root path relative',
      { roots: [{ location: '/a', path: 'b' }] },
      'roots[0].path: must be an absolute path',
    ],
    ['root unknown key', { roots: [{ location: '/a', mode: 1 }] }, 'roots[0].mode: unknown setting'],
    [
      'root listed twice',
      { roots: [{ location: '/a' }, { location: '/a' }] },
      'roots[1].location: "/a" is listed twice',
    ],
    ['tls missing', { tls: undefined }, 'tls: must be a mapping'],
    ['tls.ca missing', { tls: { ...tls, ca: undefined } }, 'tls.ca: must be a non-empty string'],
    ['tls.cert relative', { tls: { ...tls, cert: 'host01.crt' } }, 'tls.cert: must be an absolute path'],
    ['tls unknown key', { tls: { ...tls, password: 'x' } }, 'tls.password: unknown setting'],
    [
      'monitord.port zero',
      { monitord: { port: 0 } },
      'monitord.port: must be an integer between 1 and 65535',
    ],
    ['monitord.port string', { monitord: { port: '4124' } }, 'monitord.port: must be an integer'],
    ['export not a mapping', { export: true }, 'export: must be a mapping'],
    ['export without listen', { export: {} }, 'export.listen: must be a non-empty string'],
    ['export.listen without port', { export: { listen: '0.0.0.0' } }, 'export.listen: must be host:port'],
    [
      'export.listen on the gRPC port',
      { export: { listen: '0.0.0.0:7001' } },
      "export.listen: port 7001 is already the agent's gRPC or data-path port",
    ],
    [
      'export.advertise over http',
      { export: { listen: '0.0.0.0:7201', advertise: 'http://h:7201' } },
      'export.advertise: must be host:port or an https:// URL base (the listener speaks https only)',
    ],
    [
      'export.advertise with port 0',
      { export: { listen: '0.0.0.0:7201', advertise: 'h:0' } },
      'export.advertise: must be host:port or an https:// URL base (a port clients can reach',
    ],
    [
      'export.advertise with a query',
      { export: { listen: '0.0.0.0:7201', advertise: 'https://h/?a=1' } },
      'export.advertise: must be host:port or an https:// URL base (no query or fragment)',
    ],
    [
      'export.advertise with a password',
      { export: { listen: '0.0.0.0:7201', advertise: 'https://u:p@h/' } },
      'export.advertise: must be host:port or an https:// URL base (no user or password)',
    ],
    [
      'export.advertise not a URL',
      { export: { listen: '0.0.0.0:7201', advertise: 'host01' } },
      'export.advertise: must be host:port or an https:// URL base (not a URL)',
    ],
    [
      'export.ttlSeconds zero',
      { export: { listen: '0.0.0.0:7201', ttlSeconds: 0 } },
      'export.ttlSeconds: must be an integer between 1 and 86400',
    ],
    [
      'export.ttlSeconds over a day',
      { export: { listen: '0.0.0.0:7201', ttlSeconds: 86401 } },
      'export.ttlSeconds: must be an integer between 1 and 86400',
    ],
    ['export unknown key', { export: { listen: '0.0.0.0:7201', port: 1 } }, 'export.port: unknown setting'],
    ['log.level unknown', { log: { level: 'loud' } }, 'log.level: must be one of'],
    ['imports not a mapping', { imports: ['/var/tmp'] }, 'imports: must be a mapping'],
    ['imports.dirs empty', { imports: { dirs: [] } }, 'imports.dirs: must list at least one directory'],
    [
      'imports.dirs not strings',
      { imports: { dirs: [7] } },
      'imports.dirs: must be a list of non-empty strings',
    ],
    ['imports.dirs relative', { imports: { dirs: ['tmp'] } }, 'imports.dirs[0]: must be an absolute path'],
    [
      'imports.dirs trailing slash',
      { imports: { dirs: ['/var/tmp/'] } },
      'imports.dirs[0]: must be written without',
    ],
    ['imports.dirs root', { imports: { dirs: ['/'] } }, 'imports.dirs[0]: must not be "/"'],
    [
      'imports.dirs twice',
      { imports: { dirs: ['/srv/up', '/srv/up'] } },
      'imports.dirs[1]: "/srv/up" is listed twice',
    ],
    ['imports unknown key', { imports: { safe: [] } }, 'imports.safe: unknown setting'],
    ['unknown top-level key', { listne: '1.2.3.4:1' }, 'listne: unknown setting'],
  ];
  it.each(bad)('%s', (_title, patch, message) => {
    const err = errorOf(() => parseAgentConfig({ ...valid(), ...patch }, SOURCE));
    expect(err.reason).toBe('CONFIG_INVALID');
    expect(err.message).toContain(`config ${SOURCE}: ${message}`);
  });

  it('reads libvirt.uri and refuses one that is not a URI, naming the key', () => {
    expect(
      parseAgentConfig({ ...valid(), libvirt: { uri: 'qemu+ssh://kvm1/system' } }, SOURCE).libvirt,
    ).toEqual({
      uri: 'qemu+ssh://kvm1/system',
      enabled: true,
    });
    expect(parseAgentConfig({ ...valid(), libvirt: { enabled: false } }, SOURCE).libvirt).toEqual({
      uri: 'qemu:///system',
      enabled: false,
    });
    const err = errorOf(() => parseAgentConfig({ ...valid(), libvirt: { uri: 'system; rm -rf /' } }, SOURCE));
    expect(err.reason).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(/libvirt\.uri: must be a libvirt URI/);
  });

  it('reads imports.dirs (the upload directories a local cp may read from)', () => {
    const c = parseAgentConfig({ ...valid(), imports: { dirs: ['/var/tmp', '/srv/uploads'] } }, SOURCE);
    expect(c.imports).toEqual({ dirs: ['/var/tmp', '/srv/uploads'] });
    expect(parseAgentConfig({ ...valid(), imports: {} }, SOURCE).imports).toEqual({ dirs: ['/var/tmp'] });
  });

  it('refuses a document that is not a mapping', () => {
    expect(errorOf(() => parseAgentConfig(['x'], SOURCE)).message).toBe(
      `config ${SOURCE}: must be a mapping of settings`,
    );
  });
});

describe('loadAgentConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-config-'));

  it('reads YAML', () => {
    const file = join(dir, 'agent.yaml');
    writeFileSync(
      file,
      [
        'name: host01',
        'listen: 127.0.0.1:7001',
        'roots:',
        '  - location: /var/lib/one/datastores',
        'tls: { ca: /p/ca.crt, cert: /p/h.crt, key: /p/h.key }',
      ].join('\n'),
    );
    expect(loadAgentConfig(file).roots).toEqual([
      { location: '/var/lib/one/datastores', path: '/var/lib/one/datastores' },
    ]);
  });

  it('names the file when it cannot be read', () => {
    expect(errorOf(() => loadAgentConfig(join(dir, 'absent.yaml'))).message).toContain(
      'absent.yaml: cannot be read',
    );
  });
});
