// Fault suite: one host's wall clock jumps in the middle of a transfer, forward or back, by minutes,
// hours or days (libfaketime in that host's agent, test/faults/support/faked-clock.ts), the sender
// and the receiver in turn. Each run: the clone under way when the clock jumps, then a second clone
// started while the clock is still wrong, each end within their deadline with the checked copy or
// with one line naming the clock and the host; the source is unchanged and nothing half-written is
// left; once the clock is right again the same calls succeed. Prints the tally.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../../cli/src/demo/demo-images.js';
import { writeVmXml } from '../../cli/src/demo/fake-oned/fixtures.js';
import type { ActionRun } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { humanLines, layout, sha256File } from '../support/files.js';
import { FakedClock } from './support/faked-clock.js';
import { receivedAtLeast } from './support/receive-progress.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** 16: each jump once on the sender and once on the receiver. */
const RUNS = Number(process.env['FAULT_RUNS'] ?? 16);
/** Minutes, hours and days, both ways; 900 days is past the hosts' certificates' 825. */
const JUMPS = ['+10m', '-10m', '+3h', '-3h', '+2d', '-2d', '+900d', '-1d'];
const SYS = `${ONED_DATASTORE_LOCATION}/0`;
const SOURCE = `${ONED_DATASTORE_LOCATION}/1/clockimage00000000000000000000aa`;
const IMAGE_MB = 8;
/** 8 MiB/s: each transfer lasts about a second, so the jump lands mid-way. */
const RATE = 8 * MIB;
const CALL_DEADLINE_MS = 60_000;
const HOSTS = ['frontend', 'host01'] as const;

let dir = '';
let stack: Stack;
let sourceSum: string;
const clocks = new Map<string, FakedClock>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'one-storage-clock-'));
  for (const h of HOSTS) clocks.set(h, await FakedClock.create(dir, h));
  stack = await Stack.start({
    dataRateLimit: RATE,
    deadlines: { controlMs: 5_000 },
    agentEnv: (name) => clocks.get(name)?.env(),
  });
  const source = stack.localPath('frontend', SOURCE);
  await makeImage(source, 'raw', IMAGE_MB, 0x42);
  await writePattern(source, 'raw', 0x43, MIB, (IMAGE_MB - 1) * MIB);
  sourceSum = await sha256File(source);
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function clone(vm: number): Promise<ActionRun> {
  await writeVmXml(stack.fixturesDir, {
    id: vm,
    disks: [{ diskId: 0, imageId: 3, source: SOURCE, format: 'raw', tmMad: 'grpc', size: IMAGE_MB }],
    history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
  });
  const args = [`frontend:${SOURCE}`, `host01:${SYS}/${vm}/disk.0`, `${vm}`, '1'];
  const child = spawn(`${stack.remotesDir}/tm/grpc/clone`, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  child.stdout.resume();
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`clone of VM ${vm} did not end within ${CALL_DEADLINE_MS} ms`));
    }, CALL_DEADLINE_MS);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({
        command: `clone ${vm}`,
        code: code ?? 1,
        stdout: '',
        stderr: err,
        ms: performance.now() - started,
      });
    });
  });
}

/** The oracle for one call: the checked copy alone, or one line naming the clock and the host, and nothing. */
async function judge(r: ActionRun, vm: number, victim: string, what: string): Promise<'copied' | 'refused'> {
  const vmDir = stack.localPath('host01', `${SYS}/${vm}`);
  if (r.code === 0) {
    expect(await sha256File(join(vmDir, 'disk.0')), what).toBe(sourceSum);
    expect(layout(vmDir), what).toEqual(['disk.0']);
    return 'copied';
  }
  const lines = humanLines(r.stderr);
  expect(lines, `${what}: ${r.stderr}`).toHaveLength(1);
  expect(lines[0], what).toMatch(new RegExp(`clock.*${victim}|${victim}.*clock`));
  expect(layout(vmDir), what).toEqual([]);
  return 'refused';
}

describe('clock jump on one host', () => {
  it(`${RUNS} runs, sender and receiver in turn: the copy or one line naming the clock, nothing half-written, retry works`, async () => {
    const tally = { runs: 0, survived: 0, copied: 0, refused: 0, bytesLost: 0 };
    const refusals: string[] = [];
    for (let i = 0; i < RUNS; i++) {
      const victim = HOSTS[i % 2] as string;
      const jump = JUMPS[Math.floor(i / 2) % JUMPS.length] as string;
      const clock = clocks.get(victim) as FakedClock;
      const what = `run ${i} (${victim} ${jump})`;
      const [during, after] = [300 + 2 * i, 301 + 2 * i];
      tally.runs++;
      const first = clone(during);
      await receivedAtLeast(stack, 'host01', 0.3);
      await clock.jump(jump);
      const results = [await first];
      results.push(await clone(after));
      await clock.reset();
      for (const [k, r] of results.entries()) {
        const vm = k === 0 ? during : after;
        const outcome = await judge(
          r,
          vm,
          victim,
          `${what}, ${k === 0 ? 'jump mid-transfer' : 'while wrong'}`,
        );
        tally[outcome]++;
        if (outcome === 'refused') refusals.push(`${what} VM ${vm}: ${humanLines(r.stderr)[0] ?? ''}`);
      }
      const now = await sha256File(stack.localPath('frontend', SOURCE));
      if (now !== sourceSum) tally.bytesLost += IMAGE_MB * MIB;
      expect(now, what).toBe(sourceSum);
      // The clock is right again: the same calls succeed (a repeat of a finished clone copies again).
      for (const vm of [during, after]) {
        const retry = await clone(vm);
        expect(retry.code, `${what} retry of VM ${vm}: ${retry.stderr}`).toBe(0);
        await judge(retry, vm, victim, `${what} retry of VM ${vm}`);
      }
      tally.survived++;
    }
    console.log(refusals.join('\n'));
    console.log(
      `clock jump on one host: ${tally.runs} runs, ${tally.survived} survived (${tally.copied} calls copied, ${tally.refused} refused in one line), ${tally.bytesLost} bytes lost`,
    );
    expect(tally).toMatchObject({ runs: RUNS, survived: RUNS, bytesLost: 0 });
  }, 600_000);
});
