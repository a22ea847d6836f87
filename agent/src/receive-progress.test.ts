// A rate-limited Receive between two real agents (mutual TLS on loopback), watched through ListJobs
// and stopped through CancelJobs on the receiving agent, as the coordinator does.
import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCertificate, pkiFiles } from '../../common/src/pki/pki.js';
import { MIB } from '../../common/src/units.js';
import type { AgentServiceClient, Job } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { sha256File } from '../../test/support/files.js';
import {
  AGENT_NAME,
  LOCATION,
  agentClient,
  call,
  ds,
  failure,
  makeDatastores,
} from '../../test/support/agent/agent-fixture.js';
import { useAgentServer } from '../../test/support/agent/server-test-fixture.js';
import { parseAgentConfig } from './config.js';
import { type RunningAgent, startAgent } from './server.js';

const SIZE = 20 * MIB;
/** host02's data.rateLimitBytesPerSecond: the 20 MiB take 2 s. */
const RATE = 10 * MIB;
/** How long a condition on ListJobs may take to show before the test fails. */
const WAIT_MS = 10_000;

const ctx = useAgentServer();
let receiver: RunningAgent;
let receiverRoot: string;
let client: AgentServiceClient;
let source: string;
let sourceSum: string;

beforeAll(async () => {
  await issueCertificate(ctx.pki.dir, 'host02', ['127.0.0.1']);
  receiverRoot = await makeDatastores(join(ctx.base, 'host02'));
  const config = parseAgentConfig(
    {
      name: 'host02',
      listen: '127.0.0.1:0',
      roots: [{ location: LOCATION, path: receiverRoot }],
      tls: pkiFiles(ctx.pki.dir, 'host02'),
      data: { rateLimitBytesPerSecond: RATE },
    },
    'test config host02',
  );
  receiver = await startAgent(config, pino({ level: 'silent' }));
  client = agentClient(receiver.port, ctx.pki.dir, true, 'coordinator', 'host02');
  // Random bytes: every byte is data, so the manifest's data bytes are the file's size.
  source = ctx.local('1/big.raw');
  await writeFile(source, randomBytes(SIZE));
  sourceSum = await sha256File(source);
  await call(client.makeDir.bind(client), { path: ds('0/42') });
});

afterAll(async () => {
  client?.close();
  await receiver?.close();
});

/** Starts a Receive of host01's big.raw into host02's `dest`, under `requestId`. */
async function startReceive(dest: string, requestId: string): Promise<{ running: Promise<unknown> }> {
  const ticket = await call(ctx.client.openSend.bind(ctx.client), {
    path: ds('1/big.raw'),
    ttlSeconds: 0,
    receiverName: 'host02',
  });
  expect(ticket.dataBytes).toBe(SIZE);
  const req = { ticket: ticket.ticket, dataAddress: ticket.dataAddress, sourceName: AGENT_NAME };
  // Wrapped: an async function's result would otherwise wait for the whole Receive.
  return {
    running: call(client.receive.bind(client), { ...req, destination: ds(dest), sparse: true }, requestId),
  };
}

/** Polls ListJobs on host02 until `holds` is true of the Receive of `requestId`; fails after WAIT_MS. */
async function receiveJob(requestId: string, holds: (job: Job) => boolean): Promise<Job> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const { jobs } = await call(client.listJobs.bind(client), { requestId });
    const job = jobs.find((j) => j.method === 'Receive');
    if (job && holds(job)) return job;
    if (Date.now() > deadline)
      throw new Error(`no Receive job of ${requestId} as expected: ${JSON.stringify(jobs)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function noJobsLeft(): Promise<void> {
  const { jobs } = await call(client.listJobs.bind(client), { requestId: '' });
  expect(jobs).toEqual([]);
}

describe('Receive progress and rate limit', () => {
  it('ListJobs shows the bytes received rising to the manifest total; the rate limit bounds the speed', async () => {
    const started = Date.now();
    const { running } = await startReceive('0/42/disk.0', 'req-progress');
    const first = await receiveJob('req-progress', (j) => j.doneBytes > 0 && j.doneBytes < j.totalBytes);
    expect(first).toMatchObject({ totalBytes: SIZE, phase: 'receiving', requestId: 'req-progress' });
    const later = await receiveJob('req-progress', (j) => j.doneBytes > first.doneBytes);
    expect(later.totalBytes).toBe(SIZE);
    expect(later.doneBytes).toBeLessThanOrEqual(SIZE);
    await running;
    const elapsed = Date.now() - started;
    // The bucket lets a tenth of a second's worth through at once; everything else waits its turn.
    expect(elapsed).toBeGreaterThanOrEqual(((SIZE - 0.1 * RATE) / RATE) * 1000 - 100);
    expect(await sha256File(join(receiverRoot, '0/42/disk.0'))).toBe(sourceSum);
    await noJobsLeft();
  });

  it('CancelJobs stops a Receive half-way: CANCELLED, nothing left behind, the source intact, a retry succeeds', async () => {
    const { running } = await startReceive('0/42/disk.1', 'req-cancel');
    await receiveJob('req-cancel', (j) => j.doneBytes > 0 && j.doneBytes < j.totalBytes);
    const { cancelled } = await call(client.cancelJobs.bind(client), { requestId: 'req-cancel' });
    expect(cancelled).toBe(1);
    const err = await failure(running);
    expect(err).toMatchObject({ code: grpc.status.CANCELLED, reason: 'CANCELLED' });
    expect(err.message).toContain('Receive was cancelled by request');
    const left = (await readdir(join(receiverRoot, '0/42'))).filter((n) => n !== 'disk.0');
    expect(left).toEqual([]);
    expect(await sha256File(source)).toBe(sourceSum);
    await noJobsLeft();

    await (
      await startReceive('0/42/disk.1', 'req-retry')
    ).running;
    expect(await sha256File(join(receiverRoot, '0/42/disk.1'))).toBe(sourceSum);
    await noJobsLeft();
  });
});
