// Fault suite: a slow destination disk (test/faults/support/slow-disk.ts: host01's datastores on a
// sync-mounted ext4 whose writes host01's agent and its tools may make at a throttled rate). Runs
// alternate a clone between hosts (the data path) and a clone within host01 (cp), and alternate
// a disk slow enough to need most of the transfer deadline with one too slow to meet it:
// * slow but in time: the call succeeds with the source's bytes, no sooner than the disk allows,
//   and its progress reaches the shim (INFO lines naming host01) while it runs;
// * too slow: the call fails within its deadline in one line, host01's job ends, nothing is at the
//   final path and no temporary is left; with the disk fast again the same call succeeds.
// The source is unchanged throughout. Prints the tally.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../../cli/src/demo/demo-images.js';
import { writeVmXml } from '../../cli/src/demo/fake-oned/fixtures.js';
import { runAction, type ActionRun } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { pkiFiles } from '../../common/src/pki/pki.js';
import { loadTls } from '../../common/src/tls.js';
import { AgentClient } from '../../coordinator/src/agents/agent-client.js';
import { expectOk } from '../support/assertions.js';
import { humanLines, layout, sha256File } from '../support/files.js';
import { SlowDisk } from './support/slow-disk.js';

/** 8: each action twice in time and twice too slow. */
const RUNS = Number(process.env['FAULT_RUNS'] ?? 8);
const LOC = ONED_DATASTORE_LOCATION;
const SYS = `${LOC}/0`;
const DATA_MB = 16;
/** The transfer deadline (coordinator's deadlines.transferMs). */
const DEADLINE_MS = 6_000;
/** In time: 16 MiB at 5 MiB/s, about 3.2 s of the 6 s. */
const IN_TIME_RATE = 5 * MIB;
/** Too slow: 16 MiB at 1 MiB/s would take 16 s. */
const TOO_SLOW_RATE = 1 * MIB;
/** A failed call ends within its deadline, plus the time to take away what it made. */
const CALL_BOUND_MS = DEADLINE_MS + 5_000;
const FRONT = `${LOC}/1/slowfront00000000000000000000aa`;
const LOCAL = `${LOC}/1/slowlocal00000000000000000000bb`;

let disk: SlowDisk | undefined;
let stack: Stack;
const sums = new Map<string, string>();
const local = (host: string, path: string): string => stack.localPath(host, path);
const CASES = [
  { name: 'clone between hosts', from: 'frontend', source: FRONT },
  { name: 'clone within host01 (cp)', from: 'host01', source: LOCAL },
];

function clone(vm: number, from: string, source: string): Promise<ActionRun> {
  return runAction(stack.remotesDir, 'tm', 'grpc', 'clone', [
    `${from}:${source}`,
    `host01:${SYS}/${vm}/disk.0`,
    `${vm}`,
    '1',
  ]);
}

/** Waits until host01 runs no call any more (a cancelled copy has removed its temporary). */
async function host01Idle(): Promise<void> {
  const client = new AgentClient(
    { name: 'host01', endpoint: `127.0.0.1:${stack.agentPort('host01')}`, certName: 'host01' },
    loadTls(pkiFiles(stack.pkiDir, 'coordinator'), 'fault'),
  );
  try {
    const deadline = performance.now() + 30_000;
    for (;;) {
      const { jobs } = await client.call(
        'listJobs',
        { requestId: '' },
        { deadlineMs: 5_000, requestId: 'fault' },
      );
      if (jobs.length === 0) return;
      if (performance.now() > deadline) throw new Error(`host01 still runs ${JSON.stringify(jobs)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    client.close();
  }
}

beforeAll(async () => {
  disk = await SlowDisk.create(256, 'one-storage-slow-');
  stack = await Stack.start({
    hostDirs: { host01: join(disk.dir, 'datastores') },
    deadlines: { controlMs: 5_000, transferMs: DEADLINE_MS },
    coordinatorSettings: { progress: { pollMs: 200, logIntervalSeconds: 1 } },
  });
  for (const c of CASES) {
    await makeImage(local(c.from, c.source), 'raw', DATA_MB, 0x51);
    await writePattern(local(c.from, c.source), 'raw', 0x52, MIB, (DATA_MB - 1) * MIB);
    sums.set(c.source, await sha256File(local(c.from, c.source)));
  }
  disk.addProcess(stack.agentPid('host01') as number);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await disk?.remove();
});

describe('slow destination disk', () => {
  it(`${RUNS} runs: in time it succeeds with progress; past the deadline one line, nothing half-written, retry works`, async () => {
    const slow = disk as SlowDisk;
    const tally = { runs: 0, survived: 0, inTime: 0, tooSlow: 0, bytesLost: 0 };
    const failures: string[] = [];
    for (let i = 0; i < RUNS; i++) {
      const vm = 400 + i;
      const c = CASES[i % CASES.length] as (typeof CASES)[number];
      const inTime = Math.floor(i / CASES.length) % 2 === 0;
      const what = `run ${i} (${c.name}, ${inTime ? 'in time' : 'too slow'})`;
      const vmDir = local('host01', `${SYS}/${vm}`);
      await writeVmXml(stack.fixturesDir, {
        id: vm,
        disks: [{ diskId: 0, imageId: 3, source: c.source, format: 'raw', tmMad: 'grpc', size: DATA_MB }],
        history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
      });
      tally.runs++;
      slow.setWriteRate(inTime ? IN_TIME_RATE : TOO_SLOW_RATE);
      const first = await clone(vm, c.from, c.source);
      if (inTime) {
        expectOk(first);
        // The disk was slow (the whole copy cannot have been written faster than the rate)...
        expect(first.ms, what).toBeGreaterThan(((DATA_MB * MIB) / IN_TIME_RATE) * 1000 * 0.8);
        // ...and the shim heard how far it had got while it ran.
        expect(first.stderr, what).toMatch(/^INFO: .* on host01: /m);
        expect(await sha256File(join(vmDir, 'disk.0')), what).toBe(sums.get(c.source));
        tally.inTime++;
      } else {
        expect(first.code, `${what}: succeeded though the disk was too slow`).not.toBe(0);
        expect(first.ms, what).toBeLessThan(CALL_BOUND_MS);
        const lines = humanLines(first.stderr);
        expect(lines, `${what}: ${first.stderr}`).toHaveLength(1);
        failures.push(`${what} after ${Math.round(first.ms)} ms: ${lines[0] ?? ''}`);
        await host01Idle();
        expect(layout(vmDir), what).toEqual([]);
        slow.setWriteRate(0);
        expectOk(await clone(vm, c.from, c.source));
        tally.tooSlow++;
      }
      expect(layout(vmDir), what).toEqual(['disk.0']);
      const now = await sha256File(local(c.from, c.source));
      if (now !== sums.get(c.source)) tally.bytesLost += DATA_MB * MIB;
      expect(now, what).toBe(sums.get(c.source));
      tally.survived++;
      await rm(vmDir, { recursive: true, force: true });
    }
    slow.setWriteRate(0);
    console.log(failures.join('\n'));
    console.log(
      `slow destination disk: ${tally.runs} runs, ${tally.survived} survived (${tally.inTime} in time, ${tally.tooSlow} past the deadline failed in one line and succeeded on retry), ${tally.bytesLost} bytes lost`,
    );
    expect(tally).toMatchObject({ runs: RUNS, survived: RUNS, bytesLost: 0 });
  }, 300_000);
});
