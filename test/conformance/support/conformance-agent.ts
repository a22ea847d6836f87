/**
 * One real agent (host01, gRPC over mutual TLS on loopback, its own PKI and datastore root with
 * system datastore 0 and image datastore 1) for a conformance file, with the cleanup tracker run
 * after every test. useConformanceAgent() registers the hooks and returns the context the tests
 * read; its fields are set by the beforeAll.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { pkiFiles } from '../../../common/src/pki/pki.js';
import type { AgentServiceClient } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { parseAgentConfig } from '../../../agent/src/config.js';
import { type RunningAgent, startAgent } from '../../../agent/src/server.js';
import {
  AGENT_NAME,
  LOCATION,
  type Pki,
  agentClient,
  failure,
  makeDatastores,
  makePki,
  makeTempDir,
  ds,
} from '../../support/agent/agent-fixture.js';
import { CleanupTracker } from './cleanup-tracker.js';

/** csi-sanity's idempotency count: each documented repeat is made this many times. */
export const REPEATS = 10;

export interface ConformanceAgent {
  client: AgentServiceClient;
  agent: RunningAgent;
  pki: Pki;
  /** The agent's local datastore root (served as LOCATION). */
  root: string;
  tracker: CleanupTracker;
  /** The oned-view path of `rel`, registered with the tracker for removal after the test. */
  made(rel: string): string;
  /** The local path of `rel`, under the root. */
  local(rel: string): string;
}

export function useConformanceAgent(extraConfig: Record<string, unknown> = {}): ConformanceAgent {
  let base = '';
  const ctx = {} as ConformanceAgent;
  beforeAll(async () => {
    base = await makeTempDir('conformance-');
    const pki = await makePki(base);
    const root = await makeDatastores(base);
    const config = parseAgentConfig(
      {
        name: AGENT_NAME,
        listen: '127.0.0.1:0',
        roots: [{ location: LOCATION, path: root }],
        tls: pkiFiles(pki.dir, AGENT_NAME),
        ...extraConfig,
      },
      'conformance config',
    );
    const agent = await startAgent(config, pino({ level: process.env['CONFORMANCE_LOG'] ?? 'silent' }));
    const tracker = new CleanupTracker(root);
    tracker.takeBaseline();
    Object.assign(ctx, {
      client: agentClient(agent.port, pki.dir),
      agent,
      pki,
      root,
      tracker,
      made: (rel: string) => ds(tracker.track(rel)),
      local: (rel: string) => join(root, rel),
    });
  });
  afterEach(async () => {
    await ctx.tracker?.cleanup();
  });
  afterAll(async () => {
    ctx.client?.close();
    await ctx.agent?.close();
    if (base) await rm(base, { recursive: true, force: true });
  });
  return ctx;
}

/** Runs `fn` REPEATS times in a row and returns every result. */
export async function repeated<T>(fn: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < REPEATS; i++) results.push(await fn());
  return results;
}

/** The documented repeat clause: every one of REPEATS calls gives the same result as the first. */
export async function expectSameEveryTime<T>(fn: () => Promise<T>): Promise<T>;
/** The same, comparing `view` of each result (what the clause promises, without timings). */
export async function expectSameEveryTime<T, V>(fn: () => Promise<T>, view: (r: T) => V): Promise<V>;
export async function expectSameEveryTime<T>(
  fn: () => Promise<T>,
  view: (r: T) => unknown = (r) => r,
): Promise<unknown> {
  const results = (await repeated(fn)).map(view);
  for (const r of results) expect(r).toEqual(results[0]);
  return results[0];
}

/** The call fails with `code` and `reason`, and its message names `mentions` (a field, a path). */
export async function expectFailure(
  p: Promise<unknown>,
  code: grpc.status,
  reason: string,
  mentions?: string | RegExp,
): Promise<string> {
  const f = await failure(p);
  expect({ code: f.code, reason: f.reason }, f.message).toEqual({ code, reason });
  if (mentions !== undefined) expect(f.message).toMatch(mentions);
  return f.message;
}
