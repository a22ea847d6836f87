// Conformance of the agent's monitoring RPCs (MonitorDatastore, SetMonitorHost) against a real
// agent over mutual TLS.
import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { call } from '../support/agent/agent-fixture.js';
import { expectFailure, expectSameEveryTime, useConformanceAgent } from './support/conformance-agent.js';

const c = useConformanceAgent();
const { INVALID_ARGUMENT, PERMISSION_DENIED } = grpc.status;

describe('MonitorDatastore', () => {
  it('reports the capacity, creating a missing datastore dir; a repeat returns the same figures', async () => {
    const datastoreDir = c.made('101');
    const r = await expectSameEveryTime(
      () => call(c.client.monitorDatastore.bind(c.client), { datastoreDir, vmDisks: false }),
      // Free space moves with whatever else runs on this machine; the total does not.
      (m) => ({ total: m.totalMb, lines: m.vmLines }),
    );
    expect(r.total).toBeGreaterThan(0);
    expect(existsSync(c.local('101'))).toBe(true);
  });

  it('refuses an unsafe path or one outside the roots', async () => {
    for (const [datastoreDir, code, reason] of [
      ['relative', INVALID_ARGUMENT, 'UNSAFE_PATH'],
      ['/etc', PERMISSION_DENIED, 'PATH_OUTSIDE_ROOTS'],
    ] as const) {
      await expectFailure(
        call(c.client.monitorDatastore.bind(c.client), { datastoreDir, vmDisks: true }),
        code,
        reason,
      );
    }
  });
});

describe('SetMonitorHost', () => {
  it('sets the host id; a repeat succeeds with the same answer', async () => {
    expect(
      await expectSameEveryTime(() => call(c.client.setMonitorHost.bind(c.client), { hostId: 7 })),
    ).toEqual({
      hostId: 7,
    });
  });

  it('a negative id is INVALID_ARGUMENT naming host_id', async () => {
    await expectFailure(
      call(c.client.setMonitorHost.bind(c.client), { hostId: -2 }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /host.?id/,
    );
  });
});
