// Fuzzing the agent's data path, both ways, in both encryption modes (tls and none), against real
// agents whose data listeners are on loopback (the bench and the checks: data-path-rig.ts):
// * receiving: the test starts a Receive through the agent's gRPC API (coordinator certificate),
//   naming a fake sender that holds what a sender holds (the ticket, a certificate of the cloud's
//   CA), which answers the handshake and then sends a generated, often broken, frame stream
//   (data-path-sender-streams.ts, data-path-trees.ts). Oracle: the call ends within its deadline,
//   with success only when the data is what was sent, or a known reason (never INTERNAL) in one
//   line; nothing at the final path after a failure; no temporary left; the canary tree (behind a
//   symlink planted in the root) unchanged.
// * sending: a client holding a ticket from OpenSend talks to the agent's data listener with
//   generated scripts (data-path-client-scripts.ts). Oracle: the agent serves the whole transfer
//   only to an honest, proven, first use of the ticket (and always to it), refuses anything else
//   with a known reason in one line or closes, and never leaves a connection hanging.
// After both: the agent logged no unexpected error, nothing was rejected unhandled, and a real
// transfer still works in both modes.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AGENT_NAME, ds } from '../support/agent/agent-fixture.js';
import { clientCases } from './data-path-client-scripts.js';
import { fingerprint } from './data-path-oracle.js';
import {
  MODES,
  receiveChecked,
  sendChecked,
  useDataPathRig,
  type ReceiveCase,
  type Tickets,
} from './data-path-rig.js';
import { senderCases } from './data-path-sender-streams.js';

/** Sequences per direction; the default keeps the whole file near 30 s here. */
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 600);
const SEED = Number(process.env['FUZZ_SEED'] ?? 20_261_205);

const rig = useDataPathRig();

const receiveCases: fc.Arbitrary<ReceiveCase> = fc.record({
  mode: fc.constantFrom(...MODES),
  c: senderCases,
  sparse: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  dest: fc.oneof(
    { weight: 20, arbitrary: fc.constant('in' as const) },
    { weight: 1, arbitrary: fc.constantFrom('escape' as const, 'climb' as const) },
  ),
});

describe('fuzzing the data path', () => {
  it(
    `receives ${RUNS} generated sender streams (seed ${SEED}): only sound data lands, each call ends in one line`,
    async () => {
      const tally = { sound: 0, variant: 0, refused: 0 };
      let n = 0;
      await fc.assert(
        fc.asyncProperty(receiveCases, async (rc) => {
          tally[(await receiveChecked(rig, rc, `c${n++}`)).outcome]++;
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true },
      );
      console.log(
        `fuzz data path (receive): ${RUNS} sender streams (seed ${SEED}): ${tally.sound + tally.variant} received (${tally.sound} sound, ${tally.variant} with harmless changes, data checked), ${tally.refused} refused with a known reason, 0 hung, 0 left behind`,
      );
      expect(tally.sound).toBeGreaterThan(0);
    },
    Math.max(3_600_000, RUNS * 100),
  );

  it(
    `answers ${RUNS} generated receiver conversations on its data listener (seed ${SEED})`,
    async () => {
      const tally = { served: 0, refused: 0, closed: 0 };
      const tickets: Tickets = { tls: {}, none: {} };
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            mode: fc.constantFrom(...MODES),
            reuse: fc.integer({ min: 0, max: 19 }),
            c: clientCases,
          }),
          async ({ mode, reuse, c }) => {
            const o = await sendChecked(rig, mode, c, reuse === 0, tickets);
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
    },
    Math.max(3_600_000, RUNS * 100),
  );

  it('still serves a valid transfer in both modes, logged no unexpected error, left nothing unhandled', async () => {
    for (const mode of MODES) {
      const agent = rig.agents[mode];
      const ticket = await agent.openSend(AGENT_NAME);
      const r = await agent.receive({
        ticket,
        dataAddress: `127.0.0.1:${agent.dataPort}`,
        sourceName: AGENT_NAME,
        destination: ds('0/in/after'),
        sparse: true,
      });
      expect(r.ok ? 'ok' : `${r.reason} ${r.message}`).toBe('ok');
      expect((await readFile(join(agent.root, '0', 'in', 'after'))).equals(rig.source)).toBe(true);
      expect(await readdir(join(agent.root, '0', 'in'))).toEqual(['after']);
      expect(agent.unexpected).toEqual([]);
    }
    expect(fingerprint(rig.canary)).toBe(rig.canaryBefore);
    expect(rig.unhandled).toEqual([]);
  });
});
