// Conformance of the agent's own RPCs about itself (Health) and its running calls (ListJobs,
// CancelJobs), against a real agent over mutual TLS whose data path is throttled to 1 MiB/s, so a
// Receive of a few MiB runs long enough to be listed and cancelled.
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { AGENT_NAME, LOCATION, call, ds } from '../support/agent/agent-fixture.js';
import { expectFailure, expectSameEveryTime, useConformanceAgent } from './support/conformance-agent.js';

const MIB = 1024 * 1024;
const c = useConformanceAgent({ data: { listen: '127.0.0.1:0', rateLimitBytesPerSecond: MIB } });
const WAIT_MS = 20_000;

/** Starts a Receive of `mib` MiB under `requestId`; resolves once ListJobs shows it moving. */
async function slowReceive(
  requestId: string,
  name: string,
  mib = 6,
): Promise<{ done: Promise<unknown>; job: Job }> {
  writeFileSync(c.local(c.tracker.track(`0/${name}-src`)), randomBytes(mib * MIB));
  const sent = await call(c.client.openSend.bind(c.client), {
    path: ds(`0/${name}-src`),
    ttlSeconds: 0,
    receiverName: AGENT_NAME,
  });
  const done = call(
    c.client.receive.bind(c.client),
    {
      ticket: sent.ticket,
      dataAddress: sent.dataAddress,
      sourceName: AGENT_NAME,
      destination: c.made(`0/${name}-dst`),
      sparse: true,
    },
    requestId,
  );
  done.catch(() => undefined);
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const { jobs } = await call(c.client.listJobs.bind(c.client), { requestId });
    const job = jobs.find((j) => j.doneBytes > 0);
    if (job) return { done, job };
    if (Date.now() > deadline) throw new Error(`the Receive never showed progress: ${JSON.stringify(jobs)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Health', () => {
  it('reports name, version, clock, certificate and each root with its space; a repeat gives the same', async () => {
    const before = Date.now();
    const h = await expectSameEveryTime(
      () => call(c.client.health.bind(c.client), { deep: false }),
      (r) => ({ ...r, nowMs: 0, datastores: r.datastores.map((d) => ({ ...d, freeBytes: 0 })) }),
    );
    expect(h).toMatchObject({ name: AGENT_NAME, checks: [] });
    expect(h.version).not.toBe('');
    expect(h.certificateNotAfterMs).toBeGreaterThan(before);
    expect(h.certificateSubject).toContain(AGENT_NAME);
    expect(h.datastores).toEqual([
      expect.objectContaining({ location: LOCATION, root: c.root, ok: true, detail: '' }),
    ]);
    const now = await call(c.client.health.bind(c.client), { deep: false });
    expect(Math.abs(Number(now.nowMs) - Date.now())).toBeLessThan(5_000);
    expect(now.datastores[0]?.totalBytes).toBeGreaterThanOrEqual(now.datastores[0]?.freeBytes ?? Infinity);
  });

  it('with deep, adds one named check per tool and root, each ok or with its fix', async () => {
    const h = await call(c.client.health.bind(c.client), { deep: true });
    expect(h.checks.length).toBeGreaterThan(3);
    for (const check of h.checks) {
      expect(check.name).not.toBe('');
      if (!check.ok) expect(check.fix, check.name).not.toBe('');
    }
    expect(h.checks.find((k) => /qemu-img/.test(k.name))).toMatchObject({ ok: true });
  });
});

describe('ListJobs', () => {
  it('lists a running call with its request id, method and progress; filters by request id; not itself', async () => {
    const requestId = `conf-${randomUUID()}`;
    const { done, job } = await slowReceive(requestId, 'listed');
    expect(job).toMatchObject({ requestId, method: 'Receive', phase: 'receiving', totalBytes: 6 * MIB });
    expect(job.doneBytes).toBeLessThan(job.totalBytes);
    const all = await call(c.client.listJobs.bind(c.client), { requestId: '' });
    expect(all.jobs.map((j) => j.method)).toEqual(['Receive']);
    expect((await call(c.client.listJobs.bind(c.client), { requestId: 'no-such-request' })).jobs).toEqual([]);
    await call(c.client.cancelJobs.bind(c.client), { requestId });
    await done.catch(() => undefined);
    expect((await call(c.client.listJobs.bind(c.client), { requestId: '' })).jobs).toEqual([]);
  });
});

describe('CancelJobs', () => {
  it('aborts the calls of one request id: they fail CANCELLED, nothing half-written stays; a repeat aborts nothing', async () => {
    const requestId = `conf-${randomUUID()}`;
    const { done } = await slowReceive(requestId, 'cancelled');
    expect(await call(c.client.cancelJobs.bind(c.client), { requestId })).toEqual({ cancelled: 1 });
    await expectFailure(done, grpc.status.CANCELLED, 'CANCELLED', /Receive was cancelled by request/);
    expect(existsSync(c.local('0/cancelled-dst'))).toBe(false);
    expect(await expectSameEveryTime(() => call(c.client.cancelJobs.bind(c.client), { requestId }))).toEqual({
      cancelled: 0,
    });
    expect(await call(c.client.cancelJobs.bind(c.client), { requestId: '' })).toEqual({ cancelled: 0 });
  });
});
