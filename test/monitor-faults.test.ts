import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../cli/src/demo/processes.js';
import { Stack } from '../cli/src/demo/stack.js';
import { pkiFiles } from '../common/src/pki/pki.js';
import { loadTls } from '../common/src/tls.js';
import { AgentClient } from '../coordinator/src/agents/agent-client.js';
import { fileShows } from './support/files.js';
import { FakeMonitord } from './fakes/monitord/fake-monitord.js';

// monitord is not there when the agent starts pushing: the agent keeps serving, backs off as
// monitord_client.rb does (1, 1, 1, 2, 4, ... s) and delivers once monitord listens.
const HOST_ID = 3;
let stack: Stack;
let port: number;
let monitord: FakeMonitord | undefined;
let base: string;

beforeAll(async () => {
  port = await freePort();
  base = await mkdtemp(join(tmpdir(), 'monitor-faults-'));
  stack = await Stack.start({
    hosts: ['host01'],
    agentSettings: () => ({
      monitord: { address: '127.0.0.1', port },
      monitor: {
        report: 'push',
        hostId: HOST_ID,
        socket: join(base, 'host01-monitor.sock'),
        schedules: { vm: '* * * * * *', system: '* * * * * *' },
      },
    }),
  });
});

afterAll(async () => {
  await stack?.stop();
  await monitord?.close();
  await rm(base, { recursive: true, force: true });
});

const agentLog = (): string => join(stack.baseDir, 'logs', 'agent-host01.log');

function logLines(): Array<Record<string, unknown>> {
  return readFileSync(agentLog(), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Waits until the agent's log shows what `predicate` looks for (`what` names it in a failure). */
async function until(what: string, predicate: () => boolean): Promise<void> {
  await fileShows(agentLog(), predicate).catch((err: Error) => {
    throw new Error(`waiting for ${what}: ${err.message}`);
  });
}

describe('monitord unreachable', () => {
  it('the agent keeps running, retries with backoff, and delivers once monitord listens', async () => {
    const failures = (): Array<Record<string, unknown>> =>
      logLines().filter((l) => l['msg'] === 'monitoring: send failed; retrying' && l['kind'] === 'system');
    await until('three failed sends', () => failures().length >= 3);
    const first = failures().slice(0, 3);
    expect(first.map((l) => l['attempt'])).toEqual([1, 2, 3]);
    expect(first.map((l) => l['retryInS'])).toEqual([1, 1, 1]);
    expect(String(first[0]?.['err'])).toMatch(
      /^send to monitord 127\.0\.0\.1:\d+: refused \(nothing listening on that port\)$/,
    );

    const client = new AgentClient(
      { name: 'host01', endpoint: `127.0.0.1:${stack.agentPort('host01')}`, certName: 'host01' },
      loadTls(pkiFiles(stack.pkiDir, 'coordinator'), 'test'),
    );
    try {
      const hello = await client.call('hello', {}, { deadlineMs: 5_000, requestId: 'monitor-faults' });
      expect(hello.name).toBe('host01');
    } finally {
      client.close();
    }

    monitord = await FakeMonitord.start({ port, knownHosts: [HOST_ID] });
    await monitord.waitFor('SYSTEM_HOST from host 3', () => monitord!.systemHost.has(HOST_ID));
    await until('the recovery log line', () =>
      logLines().some((l) => l['msg'] === 'monitoring: monitord reachable again'),
    );
  });
});
