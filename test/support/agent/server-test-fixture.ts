/**
 * One running agent (host01, mutual TLS on loopback) for the server tests, with its log lines
 * captured. Call `const ctx = useAgentServer()` once at the top of a test file: it registers the
 * beforeAll that starts the agent and fills in `ctx`, and the afterAll that stops it.
 */
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { runTool } from '../../../common/src/tools/run-tool.js';
import type { AgentServiceClient } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { pkiFiles } from '../../../common/src/pki/pki.js';
import { parseAgentConfig } from '../../../agent/src/config.js';
import { type RunningAgent, startAgent } from '../../../agent/src/server.js';
import {
  AGENT_NAME,
  LOCATION,
  type Pki,
  agentClient,
  makeDatastores,
  makePki,
  makeTempDir,
} from './agent-fixture.js';

export const REPEATS = 3;

/** The running agent of one test file; every field but logLines is set by useAgentServer's beforeAll. */
export interface AgentServer {
  base: string;
  /** The local directory served as LOCATION. */
  root: string;
  pki: Pki;
  agent: RunningAgent;
  client: AgentServiceClient;
  /** The agent's log lines, parsed, in order. */
  readonly logLines: Array<Record<string, unknown>>;
  /** The local path of `rel` under the served root. */
  local(rel: string): string;
}

/** `extraConfig` adds agent config sections (e.g. `export`) to the test agent's. */
export function useAgentServer(extraConfig: Record<string, unknown> = {}): AgentServer {
  const ctx = {
    logLines: [],
    local: (rel: string): string => join(ctx.root, rel),
  } as Partial<AgentServer> as AgentServer;

  beforeAll(async () => {
    ctx.base = await makeTempDir('agent-server-');
    ctx.pki = await makePki(ctx.base);
    ctx.root = await makeDatastores(ctx.base);
    const config = parseAgentConfig(
      {
        name: AGENT_NAME,
        listen: '127.0.0.1:0',
        roots: [{ location: LOCATION, path: ctx.root }],
        tls: pkiFiles(ctx.pki.dir, AGENT_NAME),
        ...extraConfig,
      },
      'test config',
    );
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          ctx.logLines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    ctx.agent = await startAgent(config, pino({ level: 'info' }, sink));
    ctx.client = agentClient(ctx.agent.port, ctx.pki.dir);
  });

  afterAll(async () => {
    ctx.client?.close();
    await ctx.agent?.close();
    if (ctx.base) await rm(ctx.base, { recursive: true, force: true });
  });
  return ctx;
}

export async function repeat<T>(fn: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < REPEATS; i++) results.push(await fn());
  return results;
}

export async function qemuImg(...args: string[]): Promise<void> {
  await runTool('qemu-img', args);
}
