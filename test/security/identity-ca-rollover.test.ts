// Replacing the cloud's CA without downtime (docs/install.md#replacing-the-ca): while every node
// trusts a bundle of the old and the new CA certificate, nodes still on old-CA certificates and
// nodes already on new-CA ones talk to each other, on the control RPCs and on the data path. Both
// CAs are made by `pki init`, so they have the same subject: the chain must be found by key, not by
// name. Without the bundle, a new-CA certificate is refused.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../agent/src/config.js';
import { startAgent, type RunningAgent } from '../../agent/src/server.js';
import type { TransferService } from '../../agent/src/transfer/transfer-service.js';
import { issueCertificate } from '../../common/src/pki/pki.js';
import { channelOptions, clientCredentials, type TlsMaterial } from '../../common/src/tls.js';
import { AgentServiceClient } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { call, failure } from '../support/agent/agent-fixture.js';
import { makeTls, scratchDir, startService } from '../support/agent/transfer-support.js';
import { transfer } from '../support/agent/transfer-test-fixture.js';

let work: string;
let oldCa: Buffer;
let bundle: Buffer;
/** Certificates of the old CA and of the new one, each trusting the bundle unless a test says otherwise. */
let oldA: TlsMaterial;
let newB: TlsMaterial;
let oldCoordinator: TlsMaterial;
let newCoordinator: TlsMaterial;
const services: TransferService[] = [];
const agents: RunningAgent[] = [];

beforeAll(async () => {
  work = await scratchDir('ca-rollover');
  const oldDir = join(work, 'pki');
  const newDir = join(work, 'pki.new');
  oldA = await makeTls(oldDir, 'host-a');
  newB = await makeTls(newDir, 'host-b');
  oldCoordinator = await makeTls(oldDir, 'coordinator', 'coordinator');
  newCoordinator = await makeTls(newDir, 'coordinator', 'coordinator');
  await issueCertificate(oldDir, 'host-c', ['127.0.0.1']);
  oldCa = oldA.ca;
  expect(newB.ca.equals(oldCa), 'two distinct CAs').toBe(false);
  bundle = Buffer.concat([oldCa, newB.ca]);
  for (const t of [oldA, newB, oldCoordinator, newCoordinator]) t.ca = bundle;
});

afterAll(async () => {
  await Promise.all([...services.map((s) => s.close()), ...agents.map((a) => a.close())]);
});

async function service(
  name: string,
  tls: TlsMaterial,
  dir = name,
): Promise<{ svc: TransferService; root: string }> {
  const root = join(work, dir);
  const svc = await startService(name, tls, root);
  services.push(svc);
  await mkdir(join(root, '0'), { recursive: true });
  return { svc, root };
}

async function agent(name: string, tls: TlsMaterial): Promise<RunningAgent> {
  const root = join(work, `agent-${name}-${agents.length}`);
  await mkdir(root, { recursive: true });
  // The TLS material is passed to startAgent directly; the config's paths are never read.
  const config = parseAgentConfig(
    {
      name,
      listen: '127.0.0.1:0',
      data: { listen: '127.0.0.1:0' },
      roots: [{ location: '/var/lib/one/datastores', path: root }],
      tls: { ca: '/unused/ca.crt', cert: '/unused/cert.crt', key: '/unused/cert.key' },
    },
    `test config ${name}`,
  );
  const running = await startAgent(config, pino({ level: 'silent' }), tls);
  agents.push(running);
  return running;
}

const clientOf = (port: number, name: string, tls: TlsMaterial): AgentServiceClient =>
  new AgentServiceClient(`127.0.0.1:${port}`, clientCredentials(tls), channelOptions(name));

describe('CA replacement: old and new CA trusted together', () => {
  it('the data path works both ways between an old-CA and a new-CA agent', async () => {
    const a = await service('host-a', oldA);
    const b = await service('host-b', newB);
    await writeFile(join(a.root, '0', 'from-old'), 'written by the old-CA agent');
    await transfer(a.svc, 'host-a', '0/from-old', b.svc, '0/from-old');
    expect(await readFile(join(b.root, '0', 'from-old'), 'utf8')).toBe('written by the old-CA agent');
    await writeFile(join(b.root, '0', 'from-new'), 'written by the new-CA agent');
    await transfer(b.svc, 'host-b', '0/from-new', a.svc, '0/from-new');
    expect(await readFile(join(a.root, '0', 'from-new'), 'utf8')).toBe('written by the new-CA agent');
  });

  it('a new-CA coordinator drives an old-CA agent, and an old-CA coordinator a new-CA agent', async () => {
    const oldAgent = await agent('host-a', oldA);
    const newAgent = await agent('host-b', newB);
    const toOld = clientOf(oldAgent.port, 'host-a', newCoordinator);
    const toNew = clientOf(newAgent.port, 'host-b', oldCoordinator);
    try {
      expect(await call(toOld.hello.bind(toOld), {})).toMatchObject({ name: 'host-a' });
      expect(await call(toNew.hello.bind(toNew), {})).toMatchObject({ name: 'host-b' });
    } finally {
      toOld.close();
      toNew.close();
    }
  });
});

describe('without the bundle', () => {
  it('an agent trusting only the old CA refuses the new-CA coordinator and a new-CA agent', async () => {
    const oldOnly = { ...oldA, ca: oldCa };
    const strictAgent = await agent('host-a', oldOnly);
    const client = clientOf(strictAgent.port, 'host-a', newCoordinator);
    try {
      const refused = await failure(call(client.hello.bind(client), {}));
      expect(refused.code).toBe(grpc.status.UNAVAILABLE);
      expect(refused.message).toMatch(/No connection established/);
    } finally {
      client.close();
    }
    const a = await service('host-a', oldOnly, 'strict-a');
    const b = await service('host-b', newB, 'strict-b');
    await writeFile(join(a.root, '0', 'kept'), 'stays');
    // The same pair of certificates passes with the bundle (above): here host-a's TLS refuses host-b's.
    const refused = transfer(a.svc, 'host-a', '0/kept', b.svc, '0/kept');
    await expect(refused).rejects.toMatchObject({ reason: 'TRANSFER_FAILED' });
    await expect(refused).rejects.toThrow(/did not accept this agent's certificate/);
    expect(await readFile(join(a.root, '0', 'kept'), 'utf8')).toBe('stays');
  });
});
