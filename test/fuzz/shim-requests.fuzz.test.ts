// Fuzzing every shim entry point (TM, datastore and backup actions) through the real coordinator
// and agents (mutual TLS, loopback): generated argv and stdin as a shim would send them on the
// socket, malformed, huge, hostile. Oracle: every request is answered within its deadline, with a
// valid result or exactly one human error line of bounded length; nothing outside the datastore
// roots changes (a canary tree, reachable through a symlink planted in a root); no daemon logs an
// unexpected error; the coordinator still answers. Seeded and reproducible: FUZZ_SEED, FUZZ_RUNS
// (default 10,000; a longer run by setting it higher).
import { randomUUID } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shimEntries } from '../../common/src/drivers/driver-actions.js';
import { ShimRequest, type ShimReply } from '../../proto/gen/onestorage/shim/v1/shim.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { controlRequest, sendShimRequest } from '../../cli/src/jobs/control-request.js';
import { MAX_ERROR_LINE } from '../../coordinator/src/handle-driver-call.js';
import { unexpectedLines } from '../support/daemon-logs.js';
import { humanLines } from '../support/files.js';
import { hostile } from './hostile-inputs.js';
import { fingerprint } from '../support/canary.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 10_000);
const SEED = Number(process.env['FUZZ_SEED'] ?? 20_261_205);
/** One request may take this long at the most: no action on these inputs should come near it. */
const REQUEST_DEADLINE_MS = 20_000;

let stack: Stack;
let canary: string;
let canaryBefore: string;

beforeAll(async () => {
  stack = await Stack.start();
  canary = join(stack.baseDir, 'canary');
  mkdirSync(join(canary, 'sub'), { recursive: true });
  writeFileSync(join(canary, 'victim'), 'must not change');
  writeFileSync(join(canary, 'sub', 'disk.0'), Buffer.alloc(4096, 7));
  // A symlink inside a root leading out of it: every path through it must be refused.
  for (const host of ['frontend', 'host01', 'host02']) {
    const root = stack.localPath(host, `${ONED_DATASTORE_LOCATION}/0`);
    mkdirSync(root, { recursive: true });
    symlinkSync(canary, join(root, 'escape'));
  }
  canaryBefore = fingerprint(canary);
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

const entries = shimEntries();

const requests = (canaryDir: string) =>
  fc.record({
    entry: fc.oneof(
      { weight: 9, arbitrary: fc.constantFrom(...entries) },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constantFrom('tm', 'datastore', 'control', 'im', ''),
          driver: hostile.word,
          action: hostile.word,
        }),
      },
    ),
    args: fc.array(hostile.arg(canaryDir), { maxLength: 8 }),
    stdin: hostile.stdin,
  });

describe('fuzzing the shim entry points', () => {
  it(`answers ${RUNS} generated requests (seed ${SEED}) in time, in one line, touching nothing outside the roots`, async () => {
    const answered = { ok: 0, failed: 0 };
    await fc.assert(
      fc.asyncProperty(requests(canary), async ({ entry, args, stdin }) => {
        const req: ShimRequest = {
          ...ShimRequest.create(),
          kind: entry.kind,
          driver: entry.driver,
          action: entry.action,
          args,
          stdin: Buffer.from(stdin),
          requestId: randomUUID(),
          pid: process.pid,
        };
        const reply: ShimReply = await sendShimRequest(stack.socket, req, REQUEST_DEADLINE_MS);
        if (reply.exitCode === 0) {
          answered.ok++;
          return;
        }
        answered.failed++;
        const lines = humanLines(reply.stderr.join('\n'));
        expect(lines, JSON.stringify(reply.stderr).slice(0, 500)).toHaveLength(1);
        expect(lines[0]?.length ?? 0).toBeLessThanOrEqual(MAX_ERROR_LINE);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(
      `fuzz: ${RUNS} requests (seed ${SEED}): ${answered.ok} succeeded, ${answered.failed} refused in one line`,
    );
    expect(fingerprint(canary)).toBe(canaryBefore);
    expect((await controlRequest(stack.socket, 'ping', [])).exitCode).toBe(0);
    for (const log of stack.logFiles()) expect(unexpectedLines(log), log).toEqual([]);
  }, 3_600_000);
});
