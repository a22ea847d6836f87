// The coordinator process refuses a bad command line or configuration, whatever the cause, with
// exit code 2 and one line on stderr (as the agent does: agent/src/main.test.ts).
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pkiFiles } from '../../common/src/pki/pki.js';
import {
  AGENT_NAME,
  COORDINATOR_NAME,
  type Pki,
  makePki,
  makeTempDir,
} from '../../test/support/agent/agent-fixture.js';

/** The compiled coordinator, as the package's bin runs it (build with `npx tsc -p tsconfig.build.json`). */
const MAIN = join(process.cwd(), 'dist/coordinator/src/main.js');
const EXIT_BAD_CONFIG = 2;

let base: string;
let pki: Pki;

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npx tsc -p tsconfig.build.json" first`);
  base = await makeTempDir('coordinator-main-');
  pki = await makePki(base);
  writeFileSync(join(base, 'one_auth'), 'oneadmin:secret\n');
});

afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

function settings(tls = pkiFiles(pki.dir, COORDINATOR_NAME)): Record<string, unknown> {
  return {
    socket: join(base, 'run', 'coordinator.sock'),
    journal: join(base, 'journal.db'),
    frontend: AGENT_NAME,
    oned: { endpoint: '127.0.0.1:2634', auth: join(base, 'one_auth') },
    agents: { [AGENT_NAME]: { endpoint: '127.0.0.1:7000' } },
    tls,
  };
}

function writeText(name: string, text: string): string {
  const file = join(base, name);
  writeFileSync(file, text);
  return file;
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('one-storage-coordinator process', () => {
  it.each([
    ['no --config', () => [], '--config FILE is required (usage: one-storage-coordinator --config FILE)'],
    ['an unknown option', () => ['--confg', 'x.yaml'], "Unknown option '--confg'"],
    ['a positional argument', () => ['--config', 'x.yaml', 'extra'], "Unexpected argument 'extra'"],
    ['--config without a file', () => ['--config'], "Option '--config <value>' argument missing"],
    ['a missing config file', () => ['--config', join(base, 'nothing.yaml')], 'cannot be read (ENOENT)'],
    ['a config that is a directory', () => ['--config', base], 'cannot be read (EISDIR)'],
    [
      'a config that is not YAML',
      () => ['--config', writeText('broken.yaml', 'socket: [unclosed\n')],
      'not valid YAML/JSON',
    ],
    [
      'an invalid value',
      () => ['--config', writeText('bad.json', JSON.stringify({ ...settings(), socket: 'relative.sock' }))],
      'socket: must be an absolute path',
    ],
    [
      'unreadable TLS files',
      () => [
        '--config',
        writeText(
          'no-tls.json',
          JSON.stringify(
            settings({ ca: '/nonexistent/ca.crt', cert: '/nonexistent/c.crt', key: '/nonexistent/c.key' }),
          ),
        ),
      ],
      'tls.ca: cannot read /nonexistent/ca.crt',
    ],
    [
      'a certificate with the agent role',
      () => [
        '--config',
        writeText('agent-cert.json', JSON.stringify(settings(pkiFiles(pki.dir, AGENT_NAME)))),
      ],
      'has the agent role',
    ],
    [
      'a missing ONE_AUTH file',
      () => [
        '--config',
        writeText(
          'no-auth.json',
          JSON.stringify({
            ...settings(),
            oned: { endpoint: '127.0.0.1:2634', auth: join(base, 'no_auth') },
          }),
        ),
      ],
      'is missing',
    ],
  ])('exits 2 with one line for %s', async (_title, args, message) => {
    const { code, stderr, stdout } = await run(args());
    expect(code).toBe(EXIT_BAD_CONFIG);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^one-storage-coordinator: /);
    expect(stderr).toContain(message);
    expect(stdout).toBe('');
  });

  it('prints the usage for --help and exits 0', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^usage: one-storage-coordinator --config FILE\n/);
  });
});
