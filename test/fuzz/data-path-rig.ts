// The data-path fuzz's bench: two real agents (data.encryption tls and none) with a canary behind
// a symlink in each root, a fake sender per mode, a certificate for the peer "host02" from the
// cloud's CA; and the two checks every generated (or replayed) case goes through.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { Reasons } from '../../common/src/errors.js';
import { issueCertificate, pkiFiles } from '../../common/src/pki/pki.js';
import { loadTls, type TlsMaterial } from '../../common/src/tls.js';
import { AGENT_NAME, ds, makePki, makeTempDir } from '../support/agent/agent-fixture.js';
import { startFuzzAgent, type FuzzAgent, type Mode } from './data-path-agents.js';
import { runClient, type ClientOutcome } from './data-path-client.js';
import type { ClientCase } from './data-path-client-scripts.js';
import { FakeSender } from './data-path-fake-sender.js';
import { checkReceived, fingerprint, leftovers } from './data-path-oracle.js';
import { isPristine, type SenderCase } from './data-path-sender-streams.js';

export const MODES: Mode[] = ['tls', 'none'];
/** A case's deadline: a sender or receiver that neither answers nor closes by then is hung. */
const CASE_DEADLINE_MS = 10_000;
const PEER = 'host02';

export interface Rig {
  agents: Record<Mode, FuzzAgent>;
  senders: Record<Mode, FakeSender>;
  peerTls: TlsMaterial;
  canary: string;
  canaryBefore: string;
  /** What the agents' `0/src/disk.0` holds (what OpenSend tickets send). */
  source: Buffer;
  /** Unhandled rejections and uncaught exceptions in this process while the rig ran. */
  unhandled: string[];
}

export function useDataPathRig(): Rig {
  const rig = { agents: {}, senders: {}, unhandled: [] } as unknown as Rig;
  rig.source = Buffer.concat([randomBytes(70_000), Buffer.alloc(200_000), randomBytes(5_000)]);
  const onUnhandled = (err: unknown): void => void rig.unhandled.push(String(err));
  let base: string | undefined;
  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    base = await makeTempDir('fuzz-data-');
    const pki = await makePki(base);
    await issueCertificate(pki.dir, PEER, ['127.0.0.1']);
    rig.peerTls = loadTls(pkiFiles(pki.dir, PEER), 'fuzz');
    rig.canary = join(base, 'canary');
    await mkdir(join(rig.canary, 'sub'), { recursive: true });
    await writeFile(join(rig.canary, 'victim'), 'must not change');
    await writeFile(join(rig.canary, 'sub', 'disk.0'), Buffer.alloc(4096, 7));
    rig.canaryBefore = fingerprint(rig.canary);
    for (const mode of MODES) {
      rig.agents[mode] = await startFuzzAgent(base, pki.dir, mode, rig.canary, rig.source);
      rig.senders[mode] = await FakeSender.start(mode === 'tls' ? rig.peerTls : undefined);
    }
  }, 60_000);
  afterAll(async () => {
    for (const mode of MODES) {
      await rig.senders[mode]?.close();
      await rig.agents[mode]?.close();
    }
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    if (base) await rm(base, { recursive: true, force: true });
  });
  return rig;
}

export interface ReceiveCase {
  mode: Mode;
  c: SenderCase;
  sparse: boolean;
  /** Where the destination is: `0/in/<name>`, through the planted symlink, or climbing with "..". */
  dest: 'in' | 'escape' | 'climb';
}

/**
 * Receive through the agent's gRPC API from the fake sender playing `rc.c`, then the oracle: the
 * call ends in time, with success only for sound data (checked) or a known reason in one line;
 * nothing at the final path after a failure, no temporary, the canary unchanged.
 */
export interface Received {
  outcome: 'sound' | 'variant' | 'refused';
  /** The refusal's reason and message. */
  reason?: string;
  message?: string;
}

export async function receiveChecked(rig: Rig, rc: ReceiveCase, name: string): Promise<Received> {
  const { mode, c, sparse, dest } = rc;
  const agent = rig.agents[mode];
  const rel =
    dest === 'in' ? `0/in/${name}` : dest === 'escape' ? `0/escape/${name}` : `0/in/../../../${name}`;
  const ticket = randomBytes(32).toString('hex');
  const turn = rig.senders[mode].expect(c, ticket);
  const r = await agent.receive({
    ticket,
    dataAddress: `127.0.0.1:${rig.senders[mode].port}`,
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
  const sound = isPristine(c, played?.changed ?? true) && played?.connected === true && dest === 'in';
  const final = join(agent.root, '0', 'in', name);
  let outcome: 'sound' | 'variant' | 'refused';
  if (r.ok) {
    expect(dest, what).toBe('in');
    await checkReceived(final, c.tree, sound ? r.digest : undefined, what);
    await rm(final, { recursive: true, force: true });
    outcome = sound ? 'sound' : 'variant';
  } else {
    expect(r.reason, what).not.toBe('DEADLINE_EXCEEDED');
    expect(Object.keys(Reasons), what).toContain(r.reason);
    expect(r.reason, what).not.toBe('INTERNAL');
    expect(r.message, what).not.toMatch(/[\r\n]/);
    expect(sound, `${what}: a sound stream was refused`).toBe(false);
    await expect(lstat(final), what).rejects.toThrow(/ENOENT/);
    outcome = 'refused';
  }
  expect(await leftovers(join(agent.root, '0', 'in')), what).toEqual([]);
  expect(fingerprint(rig.canary), what).toBe(rig.canaryBefore);
  return r.ok ? { outcome } : { outcome, reason: r.reason, message: r.message };
}

/** Per agent: the ticket not used yet (from OpenSend, bound to the peer), and the last used one. */
export type Tickets = Record<Mode, { fresh?: string; used?: string }>;

/**
 * One receiver conversation on the agent's data listener, then the oracle: closed in time; any
 * ERROR a known reason in one line; the transfer served only to an honest, proven first use of a
 * ticket over an accepted transport, and always to one that reads to the end; a reused ticket
 * refused as TICKET_INVALID.
 */
export async function sendChecked(
  rig: Rig,
  mode: Mode,
  c: ClientCase,
  reuse: boolean,
  tickets: Tickets,
): Promise<ClientOutcome> {
  const agent = rig.agents[mode];
  const t = tickets[mode];
  const reusing = reuse && t.used !== undefined;
  const ticket = reusing ? (t.used as string) : (t.fresh ??= await agent.openSend(PEER));
  const o = await runClient(
    c,
    { port: agent.dataPort, material: rig.peerTls, agentName: AGENT_NAME, ticket, expect: rig.source },
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
  const proven = o.honest && allowed && !reusing && (c.proof === 'valid' || c.proof === 'twice');
  if (o.served) expect(proven, what).toBe(true);
  if (proven && c.trailing === 'none' && c.readUpTo === Infinity) expect(o.served, what).toBe(true);
  if (reusing && o.honest && allowed)
    expect(
      o.errors.map((e) => e.reason),
      what,
    ).toContain('TICKET_INVALID');
  return o;
}
