// Fault suite: an agent SIGKILLed at a different point of a transfer each run, the sender and the
// receiver in turn, through the real shims, coordinator and agents (data path throttled so every
// kill lands mid-transfer). Each run: the driver call ends within its deadline, with one line (or,
// a sender killed after its last byte left, with the checked copy), the source is unchanged, nothing is left at the final path or as a temporary once the agent is back,
// and the same call retried then succeeds with the source's bytes. Prints the tally.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../../cli/src/demo/demo-images.js';
import { writeVmXml } from '../../cli/src/demo/fake-oned/fixtures.js';
import { runAction } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { unexpectedLines } from '../support/daemon-logs.js';
import { humanLines, layout, sha256File } from '../support/files.js';
import { receivedAtLeast } from './support/receive-progress.js';
import { startClone } from './support/start-clone.js';

const RUNS = Number(process.env['FAULT_RUNS'] ?? 20);
const SYS = `${ONED_DATASTORE_LOCATION}/0`;
const SOURCE = `${ONED_DATASTORE_LOCATION}/1/faultimage00000000000000000000aa`;
const IMAGE_MB = 8;
/** 8 MiB/s: each transfer lasts about a second, so a kill at any fraction of it lands mid-way. */
const RATE = 8 * MIB;
/** A call must end within this after its agent died (the coordinator's control deadline is 5 s). */
const CALL_DEADLINE_MS = 60_000;
const WAIT_MS = 30_000;

let stack: Stack;
let sourceSum: string;

beforeAll(async () => {
  stack = await Stack.start({ dataRateLimit: RATE, deadlines: { controlMs: 5_000 } });
  const source = stack.localPath('frontend', SOURCE);
  await makeImage(source, 'raw', IMAGE_MB, 0x42);
  await writePattern(source, 'raw', 0x43, MIB, (IMAGE_MB - 1) * MIB);
  sourceSum = await sha256File(source);
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

function cloneArgs(vm: number): string[] {
  return [`frontend:${SOURCE}`, `host01:${SYS}/${vm}/disk.0`, `${vm}`, '1'];
}

describe('agent SIGKILL mid-transfer', () => {
  it(
    `${RUNS} runs, sender and receiver in turn: one-line failure, source intact, nothing half-written, retry works`,
    async () => {
      const tally = { runs: 0, survived: 0, completed: 0, bytesLost: 0 };
      for (let i = 0; i < RUNS; i++) {
        const vm = 100 + i;
        const victim = i % 2 === 0 ? 'host01' : 'frontend';
        // A different point of the transfer each run: 5 % to 90 %.
        const fraction = (5 + ((i * 37) % 86)) / 100;
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
          history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
        });
        tally.runs++;
        const clone = startClone(stack.remotesDir, cloneArgs(vm), CALL_DEADLINE_MS);
        await receivedAtLeast(stack, 'host01', fraction, WAIT_MS);
        await stack.killAgent(victim);
        const first = await clone;
        const what = `run ${i} (${victim} killed at ${fraction}): ${first.stderr}`;
        // Killed late, a sender may already have handed every byte to the kernel: the receiver then
        // finishes and checks them, and the call succeeds. Otherwise it fails, in one line.
        if (first.code === 0) tally.completed++;
        else expect(humanLines(first.stderr), what).toHaveLength(1);
        await stack.startAgent(victim);
        const now = await sha256File(stack.localPath('frontend', SOURCE));
        if (now !== sourceSum) tally.bytesLost += IMAGE_MB * MIB;
        expect(now, what).toBe(sourceSum);
        const retry = await runAction(stack.remotesDir, 'tm', 'grpc', 'clone', cloneArgs(vm));
        expect(retry.code, `${what}\nretry: ${retry.stderr}`).toBe(0);
        expect(await sha256File(stack.localPath('host01', `${SYS}/${vm}/disk.0`)), what).toBe(sourceSum);
        // Only the disk: no temporary or partial file beside it.
        expect(layout(stack.localPath('host01', `${SYS}/${vm}`)), what).toEqual(['disk.0']);
        tally.survived++;
      }
      console.log(
        `agent SIGKILL mid-transfer: ${tally.runs} runs, ${tally.survived} survived (${tally.completed} completed despite the kill, the others failed in one line), ${tally.bytesLost} bytes lost`,
      );
      expect(tally).toMatchObject({ runs: RUNS, survived: RUNS, bytesLost: 0 });
      for (const log of stack.logFiles()) expect(unexpectedLines(log), log).toEqual([]);
    },
    Math.max(900_000, RUNS * 30_000),
  );
});
