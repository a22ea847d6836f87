import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { parseAgentConfig } from '../config.js';
import { parseQuery } from './local-endpoint.js';

const SOURCE = '/etc/one-storage/agent.yaml';

function config(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    name: 'host01',
    listen: '127.0.0.1:7001',
    roots: [{ location: '/var/lib/one/datastores' }],
    tls: { ca: '/etc/pki/ca.crt', cert: '/etc/pki/host01.crt', key: '/etc/pki/host01.key' },
    ...extra,
  };
}

function message(extra: Record<string, unknown>): string {
  try {
    parseAgentConfig(config(extra), SOURCE);
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError);
    return (err as StorageError).message;
  }
  throw new Error('expected a config error');
}

describe('agent config: monitor', () => {
  it('is off without a monitor section', () => {
    expect(parseAgentConfig(config({}), SOURCE).monitor).toBeUndefined();
  });

  it("defaults to probes, OpenNebula's periods and the standard socket", () => {
    expect(parseAgentConfig(config({ monitor: {} }), SOURCE).monitor).toEqual({
      report: 'probes',
      socket: '/run/one-storage/agent-monitor.sock',
      socketMode: 0o660,
      schedules: { vm: '*/30 * * * * *', system: '0 */10 * * * *' },
      fullRefreshEvery: 10,
      watch: true,
      maxWatches: 40_000,
    });
  });

  it('takes push with a host id, a monitord address and its public key', () => {
    const c = parseAgentConfig(
      config({
        monitord: { address: '10.0.0.1', port: 4124, publicKey: '/etc/one/monitord.pub' },
        monitor: { report: 'push', hostId: 7, schedules: { vm: '*/10 * * * * *' } },
      }),
      SOURCE,
    );
    expect(c.monitor?.hostId).toBe(7);
    expect(c.monitor?.schedules.vm).toBe('*/10 * * * * *');
    expect(c.monitord?.publicKey).toBe('/etc/one/monitord.pub');
  });

  it.each([
    [{ monitor: { report: 'both' } }, /monitor\.report: must be one of push, probes, got "both"/],
    [{ monitor: { report: 'push' } }, /monitord: is required when monitor\.report is push/],
    [{ monitor: { schedules: { vm: 'every 30s' } } }, /monitor\.schedules\.vm: must be a cron expression/],
    [{ monitor: { hostId: -1 } }, /monitor\.hostId: must be an integer between 0 and/],
    [{ monitor: { socket: 'relative.sock' } }, /monitor\.socket: must be an absolute path/],
    [{ monitor: { colour: 'blue' } }, /monitor\.colour/],
    [{ monitord: { publicKey: 'key.pem' } }, /monitord\.publicKey: must be an absolute path/],
  ])('refuses %j naming the key', (extra, pattern) => {
    expect(message(extra)).toMatch(pattern);
  });
});

describe('local endpoint requests', () => {
  it.each([
    ['VM', { kind: 'vm' }],
    ['VM /var/lib/one/datastores/0', { kind: 'vm', path: '/var/lib/one/datastores/0' }],
    ['SYSTEM', { kind: 'system' }],
    ['SYSTEM x', 'SYSTEM takes no argument'],
    ['DELETE /', 'unknown request "DELETE /" (expected VM [path] or SYSTEM)'],
  ])('%j', (line, expected) => {
    expect(parseQuery(line)).toEqual(expected);
  });
});
