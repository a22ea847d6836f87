// Fuzzing the agent's data path, both ways, in both encryption modes (tls and none), against real
// agents whose data listeners are on loopback:
// * receiving: the test starts a Receive through the agent's gRPC API (coordinator certificate),
//   naming a fake sender that holds what a sender holds (the ticket, a certificate of the cloud's
//   CA), which answers the handshake and then sends a generated, often broken, frame stream
//   (data-path-sender-streams.ts). Oracle: the call ends within its deadline, with success only
//   when the stream was sound (and then the data is what was sent) or a known reason (never
//   INTERNAL) in one line; nothing at the final path after a failure; no temporary left; the canary
//   tree (behind a symlink planted in the root) unchanged.
// * sending: a client holding a ticket from OpenSend talks to the agent's data listener with
//   generated scripts (data-path-client-scripts.ts). Oracle: the agent serves the whole transfer
//   only to an honest, proven, first use of the ticket (and always to it), refuses anything else
//   with a known reason in one line or closes, and never leaves a connection hanging.
// After both: the agent logged no unexpected error, nothing was rejected unhandled, and a real
// transfer between the two agents still works.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Reasons } from '../../common/src/errors.js';
import { loadTls } from '../../common/src/tls.js';
import { issueCertificate, pkiFiles } from '../../common/src/pki/pki.js';
import { AGENT_NAME, ds, makePki, makeTempDir } from '../support/agent/agent-fixture.js';
import { runClient } from './data-path-client.js';
import { clientCases } from './data-path-client-scripts.js';
import { FakeSender } from './data-path-fake-sender.js';
import { isPristine, senderCases } from './data-path-sender-streams.js';
import { startFuzzAgent, type FuzzAgent, type Mode } from './data-path-agents.js';
import { checkReceived, fingerprint, leftovers } from './data-path-oracle.js';

/** Sequences per direction; the default keeps the whole file near 30 s here. */
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 600);
const SEED = Number(process.env['FUZZ_SEED'] ?? 20_261_205);
/** A case's deadline: a sender or receiver that neither answers nor closes by then is hung. */
const CASE_DEADLINE_MS = 10_000;
const PEER = 'host02';
const MODES: Mode[] = ['tls', 'none'];

let base: string;
let canary: string;
let canaryBefore: string;
const agents = {} as Record<Mode, FuzzAgent>;
const senders = {} as Record<Mode, FakeSender>;
let peerTls: ReturnType<typeof loadTls>;
const source = Buffer.concat([randomBytes(70_000), Buffer.alloc(200_000), randomBytes(5_000)]);
const unhandled: string[] = [];
const onUnhandled = (err: unknown): void => void unhandled.push(String(err));

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
  base = await makeTempDir('fuzz-data-');
  const pki = await makePki(base);
  await issueCertificate(pki.dir, PEER, ['127.0.0.1']);
  peerTls = loadTls(pkiFiles(pki.dir, PEER), 'fuzz');
  canary = join(base, 'canary');
  await mkdir(join(canary, 'sub'), { recursive: true });
  await writeFile(join(canary, 'victim'), 'must not change');
  await writeFile(join(canary, 'sub', 'disk.0'), Buffer.alloc(4096, 7));
  canaryBefore = fingerprint(canary);
  for (const mode of MODES) {
    agents[mode] = await startFuzzAgent(base, pki.dir, mode, canary, source);
    senders[mode] = await FakeSender.start(mode === 'tls' ? peerTls : undefined);
  }
}, 60_000);

afterAll(async () => {
  for (const mode of MODES) {
    await senders[mode]?.close();
    await agents[mode]?.close();
  }
  process.off('unhandledRejection', onUnhandled);
  process.off('uncaughtException', onUnhandled);
  if (base) await rm(base, { recursive: true, force: true });
});

const receiveCases = fc.record({
  mode: fc.constantFrom(...MODES),
  c: senderCases,
  sparse: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  dest: fc.oneof(
    { weight: 20, arbitrary: fc.constant('in') },
    { weight: 1, arbitrary: fc.constantFrom('escape', 'climb') },
  ),
});

describe('fuzzing the data path', () => {
  it(`receives ${RUNS} generated sender streams (seed ${SEED}): only sound ones land, each call ends in one line`, async () => {
    const tally = { received: 0, pristine: 0, variants: 0, refused: 0 };
    let n = 0;
    await fc.assert(
      fc.asyncProperty(receiveCases, async ({ mode, c, sparse, dest }) => {
        const agent = agents[mode];
        const name = `c${n++}`;
        const rel = dest === 'in' ? `0/in/${name}` : dest === 'escape' ? `0/escape/${name}` : `0/in/../../../${name}`;
        const ticket = randomBytes(32).toString('hex');
        const turn = senders[mode].expect(c, ticket);
        const r = await agent.receive({
          ticket,
          dataAddress: `127.0.0.1:${senders[mode].port}`,
          sourceName: PEER,
          destination: ds(rel),
          sparse,
        });
        turn.cancel();
        const played = await Promise.race([
          turn.played,
          new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), CASE_DEADLINE_MS).unref()),
        ]);
        const what = `${mode} ${rel}: ${r.ok ? 'ok' : `${r.reason} ${r.message}`}`.slice(0, 600);
        expect(played, `${what}: the agent left the data connection open`).toBeDefined();
        expect(played?.anomalies, what).toEqual([]);
        const final = join(agent.root, '0', 'in', name);
        if (r.ok) {
          tally.received++;
          expect(dest, what).toBe('in');
          await checkReceived(final, c.tree, r.digest, what);
          if (isPristine(c, played?.changed ?? true)) tally.pristine++;
          else tally.variants++;
          await rm(final, { recursive: true, force: true });
        } else {
          tally.refused++;
          expect(r.reason, what).not.toBe('DEADLINE_EXCEEDED');
          expect(Object.keys(Reasons), what).toContain(r.reason);
          expect(r.reason, what).not.toBe('INTERNAL');
          expect(r.message, what).not.toMatch(/[\r\n]/);
          expect(isPristine(c, played?.changed ?? true) && played?.connected && dest === 'in', what).toBe(false);
          await expect(lstat(final), what).rejects.toThrow(/ENOENT/);
        }
        expect(await leftovers(join(agent.root, '0', 'in')), what).toEqual([]);
        expect(fingerprint(canary), what).toBe(canaryBefore);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(
      `fuzz data path (receive): ${RUNS} sender streams (seed ${SEED}): ${tally.received} received (${tally.pristine} sound, ${tally.variants} sound variants), ${tally.refused} refused with a known reason, 0 hung, 0 left behind`,
    );
    expect(tally.pristine).toBeGreaterThan(0);
  }, 3_600_000);

  it(`answers ${RUNS} generated receiver conversations on its data listener (seed ${SEED})`, async () => {
    const tally = { served: 0, refused: 0, closed: 0 };
    const tickets = {} as Record<Mode, { fresh?: string; used?: string }>;
    for (const mode of MODES) tickets[mode] = {};
    await fc.assert(
      fc.asyncProperty(
        fc.record({ mode: fc.constantFrom(...MODES), reuse: fc.integer({ min: 0, max: 19 }), c: clientCases }),
        async ({ mode, reuse, c }) => {
          const agent = agents[mode];
          const t = tickets[mode];
          const reusing = reuse === 0 && t.used !== undefined;
          const ticket = reusing ? (t.used as string) : (t.fresh ??= await agent.openSend(PEER));
          const o = await runClient(
            c,
            { port: agent.dataPort, material: peerTls, agentName: AGENT_NAME, ticket, expect: source },
            CASE_DEADLINE_MS,
          );
          // A proven ticket is used up, whatever happened after the proof.
          if (o.sentProof && !reusing) {
            t.used = ticket;
            delete t.fresh;
          }
          const allowed = c.transport === 'tls' || mode === 'none';
          const what = `${mode} ${JSON.stringify(c).slice(0, 300)} reusing=${reusing}: ${JSON.stringify(o).slice(0, 300)}`;
          expect(o.closed, what).toBe(true);
          expect(o.problems, what).toEqual([]);
          for (const e of o.errors) {
            expect(Object.keys(Reasons), what).toContain(e.reason);
            expect(e.reason, what).not.toBe('INTERNAL');
            expect(String(e.message), what).not.toMatch(/[\r\n]/);
          }
          const proven = o.honest && allowed && !reusing && c.proof !== 'missing' && c.proof !== 'flipped' && c.proof !== 'short' && c.proof !== 'long' && c.proof !== 'asHello';
          if (o.served) expect(proven, what).toBe(true);
          if (proven && c.trailing === 'none' && c.readUpTo === Infinity) expect(o.served, what).toBe(true);
          if (reusing && o.honest && allowed) expect(o.errors.map((e) => e.reason), what).toContain('TICKET_INVALID');
          if (o.served) tally.served++;
          else if (o.errors.length > 0) tally.refused++;
          else tally.closed++;
        },
      ),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(
      `fuzz data path (send): ${RUNS} receiver conversations (seed ${SEED}): ${tally.served} served, ${tally.refused} refused with a known reason, ${tally.closed} closed, 0 hung`,
    );
    expect(tally.served).toBeGreaterThan(0);
  }, 3_600_000);

  it('still serves a valid transfer in both modes, logged no unexpected error, left nothing unhandled', async () => {
    for (const mode of MODES) {
      const agent = agents[mode];
      const ticket = await agent.openSend(AGENT_NAME);
      const r = await agent.receive({
        ticket,
        dataAddress: `127.0.0.1:${agent.dataPort}`,
        sourceName: AGENT_NAME,
        destination: ds('0/in/after'),
        sparse: true,
      });
      expect(r.ok ? 'ok' : `${r.reason} ${r.message}`).toBe('ok');
      expect((await readFile(join(agent.root, '0', 'in', 'after'))).equals(source)).toBe(true);
      expect(await readdir(join(agent.root, '0', 'in'))).toEqual(['after']);
      expect(agent.unexpected).toEqual([]);
    }
    expect(fingerprint(canary)).toBe(canaryBefore);
    expect(unhandled).toEqual([]);
  });
});
