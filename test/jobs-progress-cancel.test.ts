// Long work made visible and stoppable, through the real shims, coordinator and agents (mutual TLS,
// loopback), with the agents' data path throttled so a clone lasts several seconds: progress in the
// journal and in `one-storage jobs`, INFO lines in what oned logs, `one-storage cancel` in the
// middle, and oned's own cancel (it kills the driver action's process).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import pino from 'pino';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../cli/src/demo/demo-images.js';
import { distEntry } from '../cli/src/demo/processes.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { writeVmXml } from '../cli/src/demo/fake-oned/fixtures.js';
import { pkiFiles } from '../common/src/pki/pki.js';
import { loadTls } from '../common/src/tls.js';
import { AgentClient } from '../coordinator/src/agents/agent-client.js';
import { AgentRegistry } from '../coordinator/src/agents/agent-registry.js';
import { recoverUnfinished } from '../coordinator/src/jobs/recover-unfinished.js';
import { Journal } from '../coordinator/src/journal/journal.js';
import type { JobView } from '../cli/src/jobs/read-jobs.js';
import { expectOk, expectOneLineFailure } from './support/assertions.js';
import { humanLines, layout, sha256File } from './support/files.js';

const run = promisify(execFile);
const SYS = `${ONED_DATASTORE_LOCATION}/0`;
const SOURCE = `${ONED_DATASTORE_LOCATION}/1/longimage000000000000000000000aa`;
const IMAGE_MB = 24;
/** 4 MiB/s: a 24 MiB clone lasts about 6 s, long enough to watch and to cancel. */
const RATE = 4 * MIB;
const WAIT_MS = 30_000;

let stack: Stack;
let sourceSum: string;

/** A shim started as oned's driver starts it, with its process kept (oned's cancel kills it). */
function startClone(host: string, vm: number): { child: ChildProcess; done: Promise<ActionRun> } {
  const args = [`frontend:${SOURCE}`, `${host}:${SYS}/${vm}/disk.0`, `${vm}`, '1'];
  const child = spawn(`${stack.remotesDir}/tm/grpc/clone`, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (b: Buffer) => out.push(b));
  child.stderr?.on('data', (b: Buffer) => err.push(b));
  child.stdin?.end();
  const done = new Promise<ActionRun>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) =>
      resolve({
        command: `tm/grpc/clone ${args.join(' ')}`,
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        ms: 0,
      }),
    );
  });
  return { child, done };
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [distEntry('cli/src/main.js'), ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function jobs(): Promise<JobView[]> {
  const r = await cli('jobs', '--json', '--db', stack.journalPath);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { jobs: JobView[] }).jobs;
}

/** Polls `one-storage jobs` until `holds` finds the job it wants (bounded). */
async function jobShowing(holds: (job: JobView) => boolean): Promise<JobView> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const found = (await jobs()).find(holds);
    if (found) return found;
    if (Date.now() > deadline)
      throw new Error(`no job as expected within ${WAIT_MS} ms: ${JSON.stringify(await jobs())}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const movingClone = (vm: number) => (j: JobView) =>
  j.state === 'running' && j.vmId === vm && j.steps.some((s) => s.done > 0 && s.done < s.total);

async function writeVm(vm: number, host: string): Promise<void> {
  await writeVmXml(stack.fixturesDir, {
    id: vm,
    disks: [
      {
        diskId: 0,
        imageId: 3,
        source: SOURCE,
        format: 'raw',
        tmMad: 'grpc',
        size: IMAGE_MB,
        originalSize: IMAGE_MB,
      },
    ],
    history: [{ hostname: host, dsId: 0, tmMad: 'grpc' }],
  });
}

async function agentJobs(host: string): Promise<number> {
  const client = new AgentClient(
    { name: host, endpoint: `127.0.0.1:${stack.agentPort(host)}`, certName: host },
    loadTls(pkiFiles(stack.pkiDir, 'coordinator'), 'test'),
  );
  try {
    return (await client.call('listJobs', { requestId: '' }, { deadlineMs: 5_000, requestId: 'test' })).jobs
      .length;
  } finally {
    client.close();
  }
}

function noPartialFiles(host: string, vm: number): void {
  expect(layout(stack.localPath(host, `${SYS}/${vm}`)).filter((l) => !l.endsWith('/'))).toEqual([]);
}

beforeAll(async () => {
  stack = await Stack.start({
    dataRateLimit: RATE,
    coordinatorSettings: { progress: { pollMs: 200, logIntervalSeconds: 1 } },
  });
  const source = stack.localPath('frontend', SOURCE);
  await makeImage(source, 'raw', IMAGE_MB, 0x42);
  await writePattern(source, 'raw', 0x43, MIB, (IMAGE_MB - 1) * MIB);
  sourceSum = await sha256File(source);
  for (const [vm, host] of [
    [20, 'host01'],
    [21, 'host02'],
    [22, 'host01'],
    [23, 'host01'],
  ] as const)
    await writeVm(vm, host);
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('progress of a long clone', () => {
  it('shows in one-storage jobs while it runs, goes into the VM log, and is journaled', async () => {
    const clone = startClone('host01', 20);
    const seen = await jobShowing(movingClone(20));
    const step = seen.steps.find((s) => s.done > 0)!;
    expect(step).toMatchObject({ host: 'host01', rpc: 'receive', phase: 'receiving', total: IMAGE_MB * MIB });
    expect(step.rate).toBeGreaterThan(0);
    // The plain view names the job by the prefix `cancel` accepts, with figures and time left.
    const plain = await cli('jobs', '--db', stack.journalPath);
    expect(plain.stdout).toMatch(
      new RegExp(
        `^${seen.requestId.slice(0, 8)} running tm/grpc/clone vm=20 .*receiving on host01: [0-9.]+ (KiB|MiB) of 24\\.0 MiB \\([0-9.]+%\\), [0-9.]+ (KiB|MiB)/s, about .* left$`,
        'm',
      ),
    );
    const r = await clone.done;
    expectOk(r);
    // At least one progress line reached what oned logs (a line per second here; 30 s by default).
    expect(r.stderr).toMatch(/^INFO: tm\/grpc\/clone: receiving on host01: .* of 24\.0 MiB \(\d+(\.\d)?%\)/m);
    expect(await sha256File(stack.localPath('host01', `${SYS}/20/disk.0`))).toBe(sourceSum);
    const ended = (await jobs()).find((j) => j.requestId === seen.requestId);
    expect(ended).toMatchObject({ state: 'success', steps: [] });
  }, 60_000);

  it('jobs --watch prints a new plain line as the job moves, and stops on SIGTERM', async () => {
    const watch = spawn(process.execPath, [
      distEntry('cli/src/main.js'),
      'jobs',
      '--watch',
      '--interval-ms',
      '200',
      '--db',
      stack.journalPath,
      '--since',
      '1s',
    ]);
    let out = '';
    watch.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const clone = startClone('host01', 22);
    const lines = (): string[] =>
      out.split('\n').filter((l) => /running tm\/grpc\/clone vm=22 .*receiving on host01/.test(l));
    const deadline = Date.now() + WAIT_MS;
    while (lines().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(lines().length).toBeGreaterThanOrEqual(2);
    expect(new Set(lines()).size).toBe(lines().length);
    expectOk(await clone.done);
    const exited = new Promise<number | null>((resolve) => watch.once('close', (code) => resolve(code)));
    watch.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 60_000);
});

describe('cancel', () => {
  it('one-storage cancel stops a clone in the middle: one-line error, nothing left behind, source intact, retry works', async () => {
    const clone = startClone('host02', 21);
    const seen = await jobShowing(movingClone(21));
    const cancel = await cli('cancel', seen.requestId.slice(0, 8), '--socket', stack.socket);
    expect(cancel, cancel.stderr).toMatchObject({ code: 0, stdout: `cancelled ${seen.requestId}\n` });
    const r = await clone.done;
    expectOneLineFailure(r, /^clone failed: cancelled by the operator \(one-storage cancel\)$/);
    expect(r.stderr).toMatch(/^ERROR: clone: CANCELLED /m);
    noPartialFiles('host02', 21);
    expect(await agentJobs('host02')).toBe(0);
    expect(await sha256File(stack.localPath('frontend', SOURCE))).toBe(sourceSum);
    expect((await jobs()).find((j) => j.requestId === seen.requestId)).toMatchObject({
      state: 'cancelled',
      cancelledBy: 'operator',
      error: 'clone failed: cancelled by the operator (one-storage cancel)',
    });
    // A second cancel of the same job: it is no longer running.
    const again = await cli('cancel', seen.requestId, '--socket', stack.socket);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toMatch(
      /^one-storage cancel: no running job ".*" \(one-storage jobs lists them/,
    );
    // oned retries the action: it finds a clean state and succeeds.
    const retry = await runAction(stack.remotesDir, 'tm', 'grpc', 'clone', [
      `frontend:${SOURCE}`,
      `host02:${SYS}/21/disk.0`,
      '21',
      '1',
    ]);
    expectOk(retry);
    expect(await sha256File(stack.localPath('host02', `${SYS}/21/disk.0`))).toBe(sourceSum);
  }, 90_000);

  it("oned's cancel (the shim killed) stops the work on the agents and is journaled as cancelled by oned", async () => {
    await run('rm', ['-rf', stack.localPath('host02', `${SYS}/21`)]);
    const clone = startClone('host02', 21);
    const seen = await jobShowing(movingClone(21));
    clone.child.kill('SIGTERM');
    await clone.done;
    const ended = await jobShowing((j) => j.requestId === seen.requestId && j.state !== 'running');
    expect(ended).toMatchObject({ state: 'cancelled', cancelledBy: 'oned' });
    expect(ended.error).toBe('clone failed: cancelled: oned stopped the driver action');
    expect(await agentJobs('host02')).toBe(0);
    noPartialFiles('host02', 21);
    expect(await sha256File(stack.localPath('frontend', SOURCE))).toBe(sourceSum);
  }, 60_000);

  it('refuses a prefix too short to be sure, and says so in one line', async () => {
    const r = await cli('cancel', 'ab', '--socket', stack.socket);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      'one-storage cancel: no running job is named "ab" (give the request id or its first 8 characters or more)',
    ]);
  });
});

describe('recovery after a coordinator restart', () => {
  it('closes the call a killed coordinator left running, leaves nothing half-written, and the retry works', async () => {
    const clone = startClone('host01', 23);
    const seen = await jobShowing(movingClone(23));
    await stack.restartCoordinator('SIGKILL');
    const r = await clone.done;
    expect(r.code).not.toBe(0);
    expect(humanLines(r.stderr)).toHaveLength(1);
    const closed = await jobShowing((j) => j.requestId === seen.requestId && j.state !== 'running');
    expect(closed.state).toBe('interrupted');
    expect(closed.error).toMatch(
      /^clone interrupted: the coordinator stopped while it ran \(oned saw it fail; retry the action\); at restart /,
    );
    expect(await agentJobs('host01')).toBe(0);
    noPartialFiles('host01', 23);
    expect(await sha256File(stack.localPath('frontend', SOURCE))).toBe(sourceSum);
    const retry = await runAction(stack.remotesDir, 'tm', 'grpc', 'clone', [
      `frontend:${SOURCE}`,
      `host01:${SYS}/23/disk.0`,
      '23',
      '1',
    ]);
    expectOk(retry);
    expect(await sha256File(stack.localPath('host01', `${SYS}/23/disk.0`))).toBe(sourceSum);
  }, 90_000);

  it('stops the work an agent still runs for a call left unfinished, and says so in the journal', async () => {
    const requestId = `left-${randomUUID()}`;
    const endpoints = new Map(
      ['frontend', 'host01'].map((name) => [
        name,
        { name, endpoint: `127.0.0.1:${stack.agentPort(name)}`, certName: name },
      ]),
    );
    const agents = new AgentRegistry(
      endpoints,
      loadTls(pkiFiles(stack.pkiDir, 'coordinator'), 'test'),
      'frontend',
    );
    const journal = new Journal(join(stack.baseDir, 'left-journal.db'));
    try {
      // What a coordinator that then died had started: a slow pull into host01 under requestId.
      const opts = { deadlineMs: 60_000, requestId };
      await agents.get('host01').call('makeDir', { path: `${SYS}/24` }, opts);
      const sent = await agents
        .get('frontend')
        .call('openSend', { path: SOURCE, ttlSeconds: 0, receiverName: 'host01' }, opts);
      const receiving = agents.get('host01').call(
        'receive',
        {
          ticket: sent.ticket,
          dataAddress: sent.dataAddress,
          sourceName: 'frontend',
          destination: `${SYS}/24/disk.0`,
          sparse: true,
        },
        opts,
      );
      receiving.catch(() => undefined);
      journal.beginCall({ requestId, kind: 'tm', driver: 'grpc', action: 'clone', args: [] });
      journal.beginStep(requestId, { host: 'host01', rpc: 'receive', args: {} });
      const deadline = Date.now() + WAIT_MS;
      while (
        !(await agents.get('host01').call('listJobs', { requestId }, opts)).jobs.some((j) => j.doneBytes > 0)
      ) {
        if (Date.now() > deadline) throw new Error('the pull never showed progress');
        await new Promise((r) => setTimeout(r, 50));
      }
      const [recovered] = await recoverUnfinished(journal, agents, 5_000, pino({ level: 'silent' }));
      expect(recovered?.error).toMatch(/; at restart: host01 was still running Receive: cancelled 1$/);
      await expect(receiving).rejects.toMatchObject({ reason: 'CANCELLED' });
      expect(journal.call(requestId)).toMatchObject({
        outcome: 'failure',
        exitCode: 1,
        interruptedAt: expect.any(Number),
      });
      expect(journal.steps(requestId)).toMatchObject([{ outcome: 'failure' }]);
      expect(journal.unfinished()).toEqual([]);
      noPartialFiles('host01', 24);
    } finally {
      journal.close();
      agents.close();
    }
  }, 60_000);
});
