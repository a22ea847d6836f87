/**
 * One running agent (host01, mutual TLS on loopback) for the server tests, with its log lines
 * captured. Call useAgentServer() once at the top of a test file: it registers the beforeAll that
 * starts the agent and the afterAll that stops it. The `let` bindings below are set by that
 * beforeAll; ESM imports are live, so a test reads the running agent's values.
 */
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { runTool } from '../../../common/src/tools/run-tool.js';
import type { AgentServiceClient } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { pkiFiles } from '../../../cli/src/pki/pki.js';
import { parseAgentConfig } from '../config.js';
import { type RunningAgent, startAgent } from '../server.js';
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
export let base: string;
export let root: string;
export let pki: Pki;
export let agent: RunningAgent;
export let client: AgentServiceClient;
export const logLines: Array<Record<string, unknown>> = [];

export function useAgentServer(): void {
  beforeAll(async () => {
    base = await makeTempDir('agent-server-');
    pki = await makePki(base);
    root = await makeDatastores(base);
    const config = parseAgentConfig(
      {
        name: AGENT_NAME,
        listen: '127.0.0.1:0',
        roots: [{ location: LOCATION, path: root }],
        tls: pkiFiles(pki.dir, AGENT_NAME),
      },
      'test config',
    );
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          logLines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    agent = await startAgent(config, pino({ level: 'info' }, sink));
    client = agentClient(agent.port, pki.dir);
  });

  afterAll(async () => {
    client?.close();
    await agent?.close();
    if (base) await rm(base, { recursive: true, force: true });
  });
}

export const ds = (rel: string): string => `${LOCATION}/${rel}`;
export const local = (rel: string): string => join(root, rel);

export async function repeat<T>(fn: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < REPEATS; i++) results.push(await fn());
  return results;
}

export async function qemuImg(...args: string[]): Promise<void> {
  await runTool('qemu-img', args);
}
