import { describe, expect, it } from 'vitest';
import type { HealthResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { reportFromHealth } from './agent-report.js';

const NOW = Date.parse('2026-12-06T00:00:00Z');
const GIB = 1024 ** 3;
const healthy: HealthResponse = {
  name: 'host01',
  version: '1.2.3',
  nowMs: NOW,
  certificateNotAfterMs: NOW + 400 * 86_400_000 + 3_600_000,
  certificateSubject: 'CN=host01',
  datastores: [
    {
      location: '/var/lib/one/datastores',
      root: '/srv/ds',
      ok: true,
      detail: '',
      totalBytes: 100 * GIB,
      freeBytes: 50 * GIB,
    },
  ],
  libvirtOk: true,
  libvirtDetail: 'qemu:///system answers',
  libvirtDisabled: false,
  monitoringMode: 'push',
  lastMonitordDeliveryMs: NOW - 12_000,
  lastMonitordError: '',
  checks: [],
};
const ds = (freeGib: number, ok = true, detail = '') => ({
  datastores: [{ ...healthy.datastores[0]!, freeBytes: freeGib * GIB, ok, detail }],
});

describe('reportFromHealth', () => {
  it('a healthy agent is one ok line of facts', () => {
    const r = reportFromHealth('host01', healthy, NOW - 10, NOW + 10);
    expect([r.state, r.findings, r.facts]).toEqual([
      'ok',
      [],
      [
        'version 1.2.3',
        'certificate valid until 2028-01-10 (400 days)',
        '/var/lib/one/datastores 50.0 GiB free of 100.0 GiB',
        'libvirt ok',
        'monitoring push (last delivery to monitord 12 s ago)',
      ],
    ]);
    expect(r.skewMs).toBe(0);
  });

  it.each<[string, Partial<HealthResponse>, 'warning' | 'failed', RegExp]>([
    [
      'a datastore 90 % used',
      ds(10),
      'warning',
      /^\/var\/lib\/one\/datastores 10\.0 GiB free of 100\.0 GiB \(90 % used\)$/,
    ],
    ['a datastore 95 % used', ds(5), 'failed', /\(95 % used\)$/],
    [
      'a missing root',
      ds(0, false, '/srv/ds is missing (ENOENT)'),
      'failed',
      /^\/var\/lib\/one\/datastores: \/srv\/ds is missing/,
    ],
    [
      'a certificate within 30 days',
      { certificateNotAfterMs: NOW + 5 * 86_400_000 },
      'warning',
      /^certificate expires in 5 days/,
    ],
    [
      'an expired certificate',
      { certificateNotAfterMs: NOW - 1 },
      'failed',
      /^certificate expired on 2026-12-05$/,
    ],
    [
      'libvirt down',
      { libvirtOk: false, libvirtDetail: 'qemu:///system: refused' },
      'failed',
      /^libvirt: qemu:\/\/\/system: refused$/,
    ],
    [
      'monitord refusing',
      { lastMonitordError: 'send to monitord 127.0.0.1:4124: refused' },
      'warning',
      /^monitord: send to/,
    ],
    ['a clock 5 s ahead', { nowMs: NOW + 5_000 }, 'warning', /^clock 5\.0 s ahead of this host$/],
    ['a clock 40 s behind', { nowMs: NOW - 40_000 }, 'failed', /^clock 40\.0 s behind this host$/],
    ['another name', { name: 'host02' }, 'failed', /^answered as "host02"$/],
  ])('%s: %s', (_what, change, state, finding) => {
    const r = reportFromHealth('host01', { ...healthy, ...change }, NOW, NOW);
    expect(r.state).toBe(state);
    expect(r.findings.map((f) => f.text)).toEqual([expect.stringMatching(finding)]);
  });

  it('libvirt declared unused is neither a warning nor a failure', () => {
    const r = reportFromHealth(
      'host01',
      {
        ...healthy,
        libvirtOk: false,
        libvirtDisabled: true,
        libvirtDetail: 'not used on this node (libvirt.enabled is false)',
      },
      NOW,
      NOW,
    );
    expect([r.state, r.facts]).toEqual([
      'ok',
      expect.arrayContaining(['libvirt not used on this node (libvirt.enabled is false)']),
    ]);
  });
});
