import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pkiFiles } from '../../common/src/pki/pki.js';
import {
  AGENT_NAME,
  LOCATION,
  type Pki,
  agentClient,
  call,
  makeDatastores,
  makePki,
  makeTempDir,
} from '../../test/support/agent/agent-fixture.js';

/** The compiled agent, as the package's bin runs it (build with `npx tsc -p tsconfig.build.json`). */
const MAIN = join(process.cwd(), 'dist/agent/src/main.js');
const EXIT_USAGE = 2;

let base: string;
let pki: Pki;
let root: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npx tsc -p tsconfig.build.json" first`);
  base = await makeTempDir('agent-main-');
  pki = await makePki(base);
  root = await makeDatastores(base);
});

afterAll(async () => {
  // Only the processes this test started, by their own handles.
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  if (base) await rm(base, { recursive: true, force: true });
});

function writeConfig(name: string, settings: Record<string, unknown>): string {
  const file = join(base, name);
  writeFileSync(file, JSON.stringify(settings));
  return file;
}

function writeText(name: string, text: string): string {
  const file = join(base, name);
  writeFileSync(file, text);
  return file;
}

function certAndKey(files: { cert: string; key: string }): { cert: string; key: string } {
  return { cert: files.cert, key: files.key };
}

function goodSettings(): Record<string, unknown> {
  return {
    name: AGENT_NAME,
    listen: '127.0.0.1:0',
    roots: [{ location: LOCATION, path: root }],
    tls: pkiFiles(pki.dir, AGENT_NAME),
  };
}

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[]): { child: ChildProcess; finished: Promise<Finished> } {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const finished = new Promise<Finished>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, finished };
}

/** Resolves with the first log line whose msg is `msg`. */
function waitForLog(child: ChildProcess, msg: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry['msg'] === msg) resolve(entry);
    });
    child.on('close', (code) => reject(new Error(`agent exited (${code}) before logging "${msg}"`)));
  });
}

describe('one-storage-agent process', () => {
  it('starts, serves, logs one "agent listening" line and stops on SIGTERM with exit 0', async () => {
    const { child, finished } = run(['--config', writeConfig('good.json', goodSettings())]);
    const listening = await waitForLog(child, 'agent listening');
    expect(listening).toMatchObject({ name: AGENT_NAME });
    const port = listening['port'] as number;
    expect(port).toBeGreaterThan(0);
    expect(typeof listening['dataAddress']).toBe('string');

    const client = agentClient(port, pki.dir);
    const hello = await call(client.hello.bind(client), {});
    client.close();
    expect(hello).toMatchObject({
      name: AGENT_NAME,
      locations: [LOCATION],
      dataAddress: listening['dataAddress'],
    });

    child.kill('SIGTERM');
    expect((await finished).code).toBe(0);
  });

  it.each([
    ['an unknown key', { listne: 'x' }, 'listne: unknown setting'],
    ['a bad listen address', { listen: 'nowhere' }, 'listen: must be host:port'],
    [
      'unreadable TLS files',
      { tls: { ca: '/nonexistent/ca.crt', cert: '/nonexistent/h.crt', key: '/nonexistent/h.key' } },
      'tls.ca: cannot read /nonexistent/ca.crt',
    ],
    ['a user that does not exist', { user: 'no-such-user-9' }, 'user: no user "no-such-user-9" on this host'],
    ['a group without a user', { group: 'root' }, 'group: needs user'],
  ])('exits 2 with one line naming the key for %s', async (_title, patch, message) => {
    const { finished } = run(['--config', writeConfig('bad.json', { ...goodSettings(), ...patch })]);
    const { code, stderr, stdout } = await finished;
    expect(code).toBe(EXIT_USAGE);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toContain(message);
    expect(stdout).toBe('');
  });

  it('exits 2 with one line naming the certificate for a certificate of another name or role', async () => {
    const tls = { ...pkiFiles(pki.dir, AGENT_NAME), ...certAndKey(pkiFiles(pki.dir, 'coordinator')) };
    const { code, stderr, stdout } = await run([
      '--config',
      writeConfig('cert.json', { ...goodSettings(), tls }),
    ]).finished;
    expect(code).toBe(EXIT_USAGE);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^one-storage-agent: .*tls\.cert/);
    expect(stdout).not.toContain('agent listening');
  });

  it.each([
    ['an unknown option', () => ['--confg', 'x.yaml'], "Unknown option '--confg'"],
    ['a positional argument', () => ['--config', 'x.yaml', 'extra'], "Unexpected argument 'extra'"],
    ['--config without a file', () => ['--config'], "Option '--config <value>' argument missing"],
    ['a missing config file', () => ['--config', join(base, 'nothing.yaml')], 'cannot be read (ENOENT)'],
    ['a config that is a directory', () => ['--config', base], 'cannot be read (EISDIR)'],
    [
      'a config that is not YAML',
      () => ['--config', writeText('broken.yaml', 'name: [unclosed\n')],
      'not valid YAML/JSON',
    ],
  ])('exits 2 with one line for %s', async (_title, args, message) => {
    const { code, stderr, stdout } = await run(args()).finished;
    expect(code).toBe(EXIT_USAGE);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^one-storage-agent: /);
    expect(stderr).toContain(message);
    expect(stdout).toBe('');
  });

  it('started as root without "user", warns once that it should run as oneadmin', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test runs as root (as CI does)');
    const { child, finished } = run(['--config', writeConfig('root.json', goodSettings())]);
    await waitForLog(child, 'agent listening');
    child.kill('SIGTERM');
    const { stdout } = await finished;
    const warnings = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .filter((e) => e.msg.startsWith('running as root'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toContain('set "user"');
  });

  it('exits 2 with the usage when --config is missing, 0 for --help', async () => {
    const missing = await run([]).finished;
    expect(missing.code).toBe(EXIT_USAGE);
    expect(missing.stderr).toContain('--config FILE is required');
    const help = await run(['--help']).finished;
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: one-storage-agent --config FILE');
  });
});
