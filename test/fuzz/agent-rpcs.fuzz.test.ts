// Fuzzing the agent's gRPC API from a client holding a valid coordinator certificate: every RPC of
// AgentService with generated requests (hostile strings in every string field, extreme numbers,
// unknown enum values), against a real agent over mutual TLS. Oracle: every call is answered
// within its deadline, with success or a status carrying a known reason (never INTERNAL, which is
// the agent's "unforeseen"); the message is one line; nothing outside the datastore root changes
// (a canary reachable through a symlink planted in the root); the agent logs no unexpected error.
// Addresses are only ever loopback: no field can make the agent reach another host.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../agent/src/config.js';
import { startAgent, type RunningAgent } from '../../agent/src/server.js';
import { REASON_METADATA_KEY, Reasons } from '../../common/src/errors.js';
import { pkiFiles } from '../../common/src/pki/pki.js';
import {
  AgentServiceDefinition,
  type AgentServiceClient,
} from '../../proto/gen/onestorage/agent/v1/agent.js';
import {
  AGENT_NAME,
  CALL_DEADLINE_MS,
  LOCATION,
  agentClient,
  makeDatastores,
  makePki,
  makeTempDir,
} from '../support/agent/agent-fixture.js';
import { fingerprint } from '../support/canary.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 10_000);
const SEED = Number(process.env['FUZZ_SEED'] ?? 20_261_205);
/** RPCs that fetch from a URL: their source fields are kept to loopback addresses below. */
const METHODS = Object.entries(AgentServiceDefinition.methods);

let base: string;
let root: string;
let canary: string;
let canaryBefore: string;
let agent: RunningAgent;
let client: AgentServiceClient;
const unexpected: string[] = [];

beforeAll(async () => {
  base = await makeTempDir('fuzz-agent-');
  const pki = await makePki(base);
  root = await makeDatastores(base);
  canary = join(base, 'canary');
  mkdirSync(join(canary, 'sub'), { recursive: true });
  writeFileSync(join(canary, 'victim'), 'must not change');
  writeFileSync(join(canary, 'sub', 'disk.0'), Buffer.alloc(4096, 7));
  symlinkSync(canary, join(root, '0', 'escape'));
  mkdirSync(join(root, '0', '42'), { recursive: true });
  writeFileSync(join(root, '0', '42', 'disk.0'), Buffer.alloc(1 << 20));
  canaryBefore = fingerprint(canary);
  // The agent's log, read for "unexpected error" (a bug) as it is written.
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n'))
        if (/"level":60|"msg":"unexpected error"|unhandled|uncaught/i.test(line)) unexpected.push(line);
      done();
    },
  });
  const config = parseAgentConfig(
    {
      name: AGENT_NAME,
      listen: '127.0.0.1:0',
      roots: [{ location: LOCATION, path: root }],
      tls: pkiFiles(pki.dir, AGENT_NAME),
      imports: { dirs: [join(base, 'uploads')] },
    },
    'fuzz config',
  );
  agent = await startAgent(config, pino({ level: 'warn' }, sink));
  client = agentClient(agent.port, pki.dir);
}, 60_000);

afterAll(async () => {
  client?.close();
  await agent?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

const PATHS = [
  `${LOCATION}/0/42/disk.0`,
  `${LOCATION}/0/42`,
  `${LOCATION}/0/new/disk.1`,
  `${LOCATION}/0/escape/victim`,
  `${LOCATION}/0/escape/sub/disk.0`,
  `${LOCATION}/0/../../../etc/passwd`,
  `${LOCATION}/0/42/disk.0;id`,
  `${LOCATION}/0/42/disk.0\u0000x`,
  '/etc/passwd',
  '',
  'relative',
];

/** A value of the same type as `sample` (a field's default), hostile where it can be. */
function valueLike(sample: unknown, field: string): fc.Arbitrary<unknown> {
  if (/address|url|source|endpoint|uri/i.test(field) && typeof sample === 'string') {
    // Loopback only: a port nobody listens on, or a file path.
    return fc.constantFrom(
      '127.0.0.1:1',
      '127.0.0.1:9',
      'http://127.0.0.1:1/x',
      `file://${LOCATION}/0/escape/victim`,
      '',
      ...PATHS,
    );
  }
  if (typeof sample === 'string') {
    return fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...PATHS) },
      { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 16 }).map((k) => 'a'.repeat(k * 1024)) },
      { weight: 1, arbitrary: fc.constantFrom('one-42', 'qcow2', 'raw', 'vda', 'x;reboot', '$(id)') },
    );
  }
  if (typeof sample === 'number') {
    return fc.oneof(
      fc.constantFrom(0, 1, -1, 42, 2 ** 31 - 1, -(2 ** 31), 2 ** 53 - 1, 99),
      fc.integer({ min: -5, max: 10 }),
    );
  }
  if (typeof sample === 'boolean') return fc.boolean();
  if (Buffer.isBuffer(sample) || sample instanceof Uint8Array)
    return fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b));
  if (Array.isArray(sample)) return fc.array(fc.constantFrom(...PATHS), { maxLength: 3 });
  if (sample !== null && typeof sample === 'object') return objectLike(sample as Record<string, unknown>);
  return fc.constant(sample);
}

function objectLike(shape: Record<string, unknown>): fc.Arbitrary<Record<string, unknown>> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [key, sample] of Object.entries(shape)) fields[key] = valueLike(sample, key);
  return fc.record(fields);
}

/** A request type's full default shape, nested messages included (ts-proto leaves them undefined). */
function shapeOf(type: { fromPartial(o: object): object }): Record<string, unknown> {
  const partial: Record<string, unknown> = {};
  let shape = type.fromPartial(partial) as Record<string, unknown>;
  for (let depth = 0; depth < 4; depth++) {
    let grew = false;
    const fill = (s: Record<string, unknown>, p: Record<string, unknown>): void => {
      for (const [k, v] of Object.entries(s)) {
        if (v === undefined) {
          p[k] = {};
          grew = true;
        } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v)) {
          p[k] = (p[k] as Record<string, unknown> | undefined) ?? {};
          fill(v as Record<string, unknown>, p[k] as Record<string, unknown>);
        }
      }
    };
    fill(shape, partial);
    if (!grew) break;
    shape = type.fromPartial(partial) as Record<string, unknown>;
  }
  return shape;
}

const calls = fc.oneof(
  ...METHODS.map(([name, def]) =>
    objectLike(shapeOf(def.requestType as unknown as { fromPartial(o: object): object })).map((request) => ({
      name,
      def,
      request,
    })),
  ),
);

function send(name: string, request: unknown): Promise<{ ok: true } | { ok: false; err: grpc.ServiceError }> {
  const method = (client as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>)[name];
  if (!method) throw new Error(`no client method ${name}`);
  return new Promise((resolve) => {
    method.call(
      client,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (err: grpc.ServiceError | null) => resolve(err ? { ok: false, err } : { ok: true }),
    );
  });
}

describe('fuzzing the agent API', () => {
  it(`answers ${RUNS} generated calls (seed ${SEED}) with a result or a known reason, touching nothing outside its root`, async () => {
    const tally = { ok: 0, refused: 0, unsendable: 0 };
    await fc.assert(
      fc.asyncProperty(calls, async ({ name, def, request }) => {
        // A value the generated types cannot carry fails in the client's encoder: nothing was sent.
        try {
          (def.requestType as unknown as { encode(m: unknown): unknown }).encode(request);
        } catch {
          tally.unsendable++;
          return;
        }
        const r = await send(name, request);
        if (r.ok) {
          tally.ok++;
          return;
        }
        tally.refused++;
        const reason = String(r.err.metadata?.get(REASON_METADATA_KEY)[0] ?? '');
        const what = `${name}: ${r.err.code} ${reason} ${r.err.details}`.slice(0, 600);
        expect(r.err.code, what).not.toBe(grpc.status.DEADLINE_EXCEEDED);
        expect(Object.keys(Reasons), what).toContain(reason);
        expect(reason, what).not.toBe('INTERNAL');
        expect(r.err.details, what).not.toMatch(/\n/);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(
      `fuzz agent: ${RUNS} generated (seed ${SEED}): ${tally.ok} succeeded, ${tally.refused} refused with a known reason, ${tally.unsendable} not encodable (never sent)`,
    );
    expect(fingerprint(canary)).toBe(canaryBefore);
    expect(unexpected).toEqual([]);
  }, 3_600_000);
});
