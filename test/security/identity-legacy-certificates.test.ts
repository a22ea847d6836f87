// Security review, class 2 (docs/security.md#the-attack-tests), existing deployments: certificates issued before roles existed carry no role. An
// agent refuses them for control RPCs, the coordinator refuses to start with one, and both say in one
// line how to fix it (the exact `one-storage pki issue --role ...` command). An agent refuses to start
// with a coordinator certificate (it would hand whoever breaks into the agent the whole cloud).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pkiFiles } from '../../common/src/pki/pki.js';
import { distEntry, stopDaemon } from '../../cli/src/demo/processes.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import type { TlsFiles } from '../../common/src/tls.js';
import { parseAgentConfig } from '../../agent/src/config.js';
import { startAgent } from '../../agent/src/server.js';
import { call, failure } from '../support/agent/agent-fixture.js';
import { entryAppears } from '../support/files.js';
import { agentClientAs, issueLegacyCertificate } from '../support/identities.js';

const VM_DIR = `${ONED_DATASTORE_LOCATION}/0/46`;

let stack: Stack;
let legacyCoordinator: TlsFiles;
let legacyHost: TlsFiles;

beforeAll(async () => {
  stack = await Stack.start({ hosts: ['frontend', 'host01'] });
  const legacyDir = join(stack.baseDir, 'legacy-pki');
  legacyCoordinator = await issueLegacyCertificate(stack.pkiDir, 'coordinator', legacyDir);
  legacyHost = await issueLegacyCertificate(stack.pkiDir, 'host07', legacyDir);
  const vmDir = stack.localPath('host01', VM_DIR);
  await mkdir(vmDir, { recursive: true });
  await writeFile(join(vmDir, 'disk.0'), 'VM 46 disk\n');
});

afterAll(async () => {
  await stack?.stop();
});

/** Runs the coordinator binary with the stack's config but `tls`, a fresh socket and journal; resolves on exit. */
async function coordinatorWith(
  tls: TlsFiles,
  tag: string,
): Promise<{ code: number | null; stderr: string; socket: string }> {
  const config = JSON.parse(readFileSync(join(stack.baseDir, 'etc', 'coordinator.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const socket = join(stack.baseDir, 'run', `${tag}.sock`);
  const file = join(stack.baseDir, 'etc', `coordinator-${tag}.json`);
  await writeFile(
    file,
    JSON.stringify({ ...config, socket, journal: join(stack.baseDir, `${tag}.db`), tls }),
  );
  const child = spawn(process.execPath, [distEntry('coordinator/src/main.js'), '--config', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  // A coordinator that accepts the certificate listens on its socket (renamed into place once it
  // accepts): stop it, the test has failed.
  const socketName = basename(socket);
  const appears = entryAppears(dirname(socket), (n) => n === socketName);
  const listening = appears.appeared.then(() => 'listening' as const);
  const first = await Promise.race([exited, listening]);
  appears.close();
  if (first === 'listening') {
    await stopDaemon(child);
    return { code: 0, stderr: `${stderr}(the coordinator started and listened on ${socket})`, socket };
  }
  return { code: first, stderr, socket };
}

describe('a certificate issued before roles', () => {
  it('cannot call control RPCs; the refusal names the pki issue command that fixes it', async () => {
    const client = agentClientAs(stack, 'host01', legacyCoordinator);
    try {
      const err = await failure(call(client.delete.bind(client), { path: VM_DIR }));
      expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(err.reason).toBe('CALLER_NOT_COORDINATOR');
      expect(err.message).not.toContain('\n');
      expect(err.message).toContain('carries no one-storage role');
      expect(err.message).toContain('one-storage pki issue --role coordinator --name coordinator');
      expect(readdirSync(stack.localPath('host01', VM_DIR))).toEqual(['disk.0']);
    } finally {
      client.close();
    }
  });

  it('the coordinator refuses to start with one, in one line naming the command', async () => {
    const run = await coordinatorWith(legacyCoordinator, 'legacy');
    expect(run.code).not.toBe(0);
    const lines = run.stderr.trim().split('\n');
    expect(lines, run.stderr).toHaveLength(1);
    expect(lines[0]).toContain(
      `one-storage pki issue --role coordinator --name coordinator --dir ${join(stack.baseDir, 'legacy-pki')} --force`,
    );
    expect(existsSync(run.socket)).toBe(false);
  });

  it('the coordinator refuses to start with an agent certificate', async () => {
    const run = await coordinatorWith(pkiFiles(stack.pkiDir, 'host01'), 'agent-cert');
    expect(run.code).not.toBe(0);
    expect(run.stderr.trim().split('\n'), run.stderr).toHaveLength(1);
    expect(run.stderr).toMatch(/has the agent role.*one-storage pki issue --role coordinator/);
    expect(existsSync(run.socket)).toBe(false);
  });

  it('an agent with one starts (its data path keeps working) and warns with the command', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n').filter(Boolean))
          lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const root = join(stack.baseDir, 'hosts', 'host07', 'datastores');
    await mkdir(root, { recursive: true });
    const agent = await startAgent(
      parseAgentConfig(
        {
          name: 'host07',
          listen: '127.0.0.1:0',
          data: { listen: '127.0.0.1:0' },
          roots: [{ location: ONED_DATASTORE_LOCATION, path: root }],
          tls: legacyHost,
        },
        'test config host07',
      ),
      pino({ level: 'info' }, sink),
    );
    await agent.close();
    const warning = lines.find((l) => l['level'] === 40 && String(l['msg']).includes('no one-storage role'));
    expect(warning, JSON.stringify(lines)).toBeDefined();
    expect(String(warning?.['msg'])).toContain('one-storage pki issue --role agent --name host07');
  });

  it('an agent refuses to start with a coordinator certificate', async () => {
    const root = join(stack.baseDir, 'hosts', 'coordinator', 'datastores');
    await mkdir(root, { recursive: true });
    const starting = startAgent(
      parseAgentConfig(
        {
          name: 'coordinator',
          listen: '127.0.0.1:0',
          data: { listen: '127.0.0.1:0' },
          roots: [{ location: ONED_DATASTORE_LOCATION, path: root }],
          tls: pkiFiles(stack.pkiDir, 'coordinator'),
        },
        'test config',
      ),
      pino({ level: 'silent' }),
    );
    await expect(starting).rejects.toMatchObject({ reason: 'CONFIG_INVALID' });
    await expect(starting).rejects.toThrow(/has the coordinator role.*one-storage pki issue --role agent/);
  });
});
