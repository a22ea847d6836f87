import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../agent/src/config.js';
import { parseCoordinatorConfig } from '../../coordinator/src/config.js';
import { isLoopback } from '../../common/src/metrics/metrics-config.js';

const agent = {
  name: 'host01',
  listen: '127.0.0.1:7000',
  roots: [{ location: '/var/lib/one/datastores' }],
  tls: { ca: '/pki/ca.crt', cert: '/pki/host01.crt', key: '/pki/host01.key' },
};
const coordinator = {
  socket: '/run/one-storage/coordinator.sock',
  journal: '/var/lib/one-storage/journal.db',
  frontend: 'frontend',
  oned: { endpoint: '127.0.0.1:2634', auth: '/var/lib/one/.one/one_auth' },
  agents: { frontend: { endpoint: '127.0.0.1:7000' } },
  tls: { ca: '/pki/ca.crt', cert: '/pki/coordinator.crt', key: '/pki/coordinator.key' },
};
// Both daemons read the section with the same parser; each table row runs against both.
const parsers = [
  ['agent', (metrics: unknown) => parseAgentConfig({ ...agent, metrics }, 'a.yaml').metrics],
  [
    'coordinator',
    (metrics: unknown) => parseCoordinatorConfig({ ...coordinator, metrics }, 'c.yaml').metrics,
  ],
] as const;

describe.each(parsers)('%s config: metrics', (_daemon, parse) => {
  it('is off when absent', () => {
    expect(parse(undefined)).toBeUndefined();
  });

  it.each([
    [{}, { listen: '127.0.0.1:9464', tls: false }],
    [{ listen: '127.0.0.1:9100' }, { listen: '127.0.0.1:9100', tls: false }],
    [{ listen: '[::1]:9464' }, { listen: '[::1]:9464', tls: false }],
    [{ listen: 'localhost:9464' }, { listen: 'localhost:9464', tls: false }],
    [
      { listen: '0.0.0.0:9464', tls: true },
      { listen: '0.0.0.0:9464', tls: true },
    ],
    [
      { listen: '10.0.0.5:9464', tls: true },
      { listen: '10.0.0.5:9464', tls: true },
    ],
  ])('accepts %j', (section, expected) => {
    expect(parse(section)).toEqual(expected);
  });

  it.each([
    [{ listen: '0.0.0.0:9464' }, /metrics\.tls: must be true when metrics\.listen is not a loopback/],
    [{ listen: '10.0.0.5:9464', tls: false }, /metrics\.tls: must be true/],
    [{ listen: 'host01.example:9464' }, /metrics\.tls: must be true/],
    [{ listen: '[::]:9464' }, /metrics\.tls: must be true/],
    [{ listen: '9464' }, /metrics\.listen: must be host:port/],
    [{ listen: '127.0.0.1:9464', tls: 'yes' }, /metrics\.tls: must be true or false/],
    [{ listen: '127.0.0.1:9464', path: '/m' }, /metrics\.path: unknown setting/],
    ['127.0.0.1:9464', /metrics: must be a mapping/],
  ])('refuses %j on one line naming the key', (section, why) => {
    let message = '';
    try {
      parse(section);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(why);
    expect(message).not.toContain('\n');
  });
});

describe('isLoopback', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.9.8.7', true],
    ['[::1]', true],
    ['localhost', true],
    ['0.0.0.0', false],
    ['[::]', false],
    ['10.1.2.3', false],
    ['host01', false],
    ['[::ffff:127.0.0.1]', false],
  ])('%s → %s', (host, loopback) => {
    expect(isLoopback(host)).toBe(loopback);
  });
});
