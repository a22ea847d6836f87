// `one-storage status` as the rolling upgrade runs it on the front-end: a real process, the
// coordinator's config and certificate, real agents over mutual TLS on loopback (the demo's stack),
// one of them stopped.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distEntry } from '../cli/src/demo/processes.js';
import { Stack } from '../cli/src/demo/stack.js';

const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
let stack: Stack;
let config: string;
const status = (args: string[]) =>
  spawnSync(process.execPath, [distEntry('cli/src/main.js'), 'status', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });

beforeAll(async () => {
  stack = await Stack.start({ hosts: ['frontend', 'host01', 'host02'] });
  config = join(stack.baseDir, 'etc', 'coordinator.json');
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

describe('one-storage status', () => {
  it('prints one ok line per agent, with its version, and exits 0 when all answer', () => {
    const r = status(['--config', config]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n').sort()).toEqual([
      `frontend ok version ${VERSION}`,
      `host01 ok version ${VERSION}`,
      `host02 ok version ${VERSION}`,
    ]);
    expect(r.status).toBe(0);
  });

  it('--agent asks only the named agents', () => {
    const r = status(['--config', config, '--agent', 'host01']);
    expect([r.status, r.stdout]).toEqual([0, `host01 ok version ${VERSION}\n`]);
  });

  it('exits 2 naming the agent when --agent names one the config does not have', () => {
    const r = status(['--config', config, '--agent', 'host09']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /no agent named host09 in .*coordinator\.json \(agents: frontend, host01, host02\)/,
    );
  });

  it('exits 2 on a config that does not exist, naming it', () => {
    const r = status(['--config', join(stack.baseDir, 'nope.yaml')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/nope\.yaml/);
  });

  it('an agent certificate is refused by the agents: only the coordinator may call them', () => {
    const asAgent = join(stack.baseDir, 'etc', 'status-as-agent.json');
    const c = JSON.parse(readFileSync(config, 'utf8')) as { tls: Record<string, string> };
    c.tls.cert = join(stack.pkiDir, 'host01.crt');
    c.tls.key = join(stack.pkiDir, 'host01.key');
    writeFileSync(asAgent, JSON.stringify(c));
    const r = status(['--config', asAgent, '--agent', 'host02']);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^host02 FAILED .*coordinator/);
  });

  it('an agent that is down is FAILED, the others ok, and the exit code is 1', async () => {
    await stack.stopAgent('host02');
    const r = status(['--config', config, '--timeout-ms', '5000']);
    const lines = r.stdout.trim().split('\n').sort();
    expect(lines[0]).toBe(`frontend ok version ${VERSION}`);
    expect(lines[1]).toBe(`host01 ok version ${VERSION}`);
    expect(lines[2]).toMatch(/^host02 FAILED agent host02 at 127\.0\.0\.1:\d+ is unreachable/);
    expect(r.status).toBe(1);
    const only = status(['--config', config, '--agent', 'host01']);
    expect(only.status).toBe(0);
  });
});
