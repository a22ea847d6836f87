// Security review, class 2 (docs/security.md#the-attack-tests): only the coordinator may call an agent's control RPCs. The review's attack: with
// host02's certificate (issued by the cloud's CA, as every agent's is), a gRPC client copied images
// out of the front-end agent, deleted a VM directory on host01 and overwrote a VM's disk through
// Receive. Each is now refused with PERMISSION_DENIED and one line, and nothing changes on disk.
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pkiFiles } from '../../common/src/pki/pki.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { channelOptions, clientCredentials, loadTls } from '../../common/src/tls.js';
import {
  type AgentServiceClient,
  AgentServiceService,
  ImageFormat,
} from '../../proto/gen/onestorage/agent/v1/agent.js';
import { call, failure } from '../support/agent/agent-fixture.js';
import { sha256File } from '../support/files.js';
import { agentClientAs } from '../support/identities.js';

const SYS = `${ONED_DATASTORE_LOCATION}/0`;
const IMG = `${ONED_DATASTORE_LOCATION}/1`;
/** An image in the front-end's image datastore that host02 has no business reading. */
const IMAGE = `${IMG}/5f1c0ffee5f1c0ffee5f1c0ffee5f1c0`;
/** VM 46's directory on host01 (the Delete target), and VM 47's disk (the Receive target). */
const VM_DIR = `${SYS}/46`;
const VM_DISK = `${SYS}/47/disk.0`;
/** What host02 (compromised) would like to write over VM 46's disk. */
const EVIL = `${SYS}/evil.raw`;

let stack: Stack;
let attacker: { frontend: AgentServiceClient; host01: AgentServiceClient; host02: AgentServiceClient };
let coordinator: { host02: AgentServiceClient };
let before: { image: string; disk: string };

async function writeFileAt(host: string, onedPath: string, content: string): Promise<void> {
  const local = stack.localPath(host, onedPath);
  await mkdir(dirname(local), { recursive: true });
  await writeFile(local, content);
}

/** What every refusal of a control RPC looks like: PERMISSION_DENIED, its reason, one line naming the caller. */
function expectCallerRefused(err: { code: grpc.status; reason: string; message: string }, method: string) {
  expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
  expect(err.reason).toBe('CALLER_NOT_COORDINATOR');
  expect(err.message).not.toContain('\n');
  expect(err.message).toContain(method);
  expect(err.message).toContain('host02');
  expect(err.message).toMatch(/only the coordinator/);
}

beforeAll(async () => {
  stack = await Stack.start();
  await writeFileAt('frontend', IMAGE, 'the front-end image: tenant A data\n');
  await writeFileAt('host01', `${VM_DIR}/disk.0`, 'VM 46 disk: tenant B data\n');
  await writeFileAt('host01', VM_DISK, 'VM 47 disk: tenant C data\n');
  await writeFileAt('host02', EVIL, 'attacker bytes\n');
  before = {
    image: await sha256File(stack.localPath('frontend', IMAGE)),
    disk: await sha256File(stack.localPath('host01', VM_DISK)),
  };
  attacker = {
    frontend: agentClientAs(stack, 'frontend', 'host02'),
    host01: agentClientAs(stack, 'host01', 'host02'),
    host02: agentClientAs(stack, 'host02', 'host02'),
  };
  coordinator = { host02: agentClientAs(stack, 'host02', 'coordinator') };
});

afterAll(async () => {
  for (const c of [...Object.values(attacker ?? {}), ...Object.values(coordinator ?? {})]) c.close();
  await stack?.stop();
});

describe("host02's agent certificate against other agents' control RPCs", () => {
  it('cannot read or copy images out of the front-end agent (Stat, ImageInfo, OpenSend)', async () => {
    const fe = attacker.frontend;
    expectCallerRefused(await failure(call(fe.stat.bind(fe), { path: IMAGE, follow: false })), 'Stat');
    expectCallerRefused(
      await failure(call(fe.imageInfo.bind(fe), { path: IMAGE, format: ImageFormat.IMAGE_FORMAT_RAW })),
      'ImageInfo',
    );
    // No ticket, so nothing to pull over the data path.
    expectCallerRefused(
      await failure(call(fe.openSend.bind(fe), { path: IMAGE, ttlSeconds: 0, receiverName: 'host02' })),
      'OpenSend',
    );
    expect(await sha256File(stack.localPath('frontend', IMAGE))).toBe(before.image);
  });

  it('cannot delete a VM directory on host01 (Delete)', async () => {
    const h1 = attacker.host01;
    expectCallerRefused(await failure(call(h1.delete.bind(h1), { path: VM_DIR })), 'Delete');
    expect(readdirSync(stack.localPath('host01', VM_DIR))).toEqual(['disk.0']);
  });

  it("cannot overwrite a VM's disk on host01 through Receive", async () => {
    // A ticket host01 could legitimately redeem (issued on the coordinator's request, for host01):
    // host02 presenting it to host01's Receive still gets nowhere.
    const c2 = coordinator.host02;
    const sent = await call(c2.openSend.bind(c2), { path: EVIL, ttlSeconds: 0, receiverName: 'host01' });
    const h1 = attacker.host01;
    const err = await failure(
      call(h1.receive.bind(h1), {
        ticket: sent.ticket,
        dataAddress: sent.dataAddress,
        sourceName: 'host02',
        destination: VM_DISK,
        sparse: true,
      }),
    );
    expectCallerRefused(err, 'Receive');
    expect(await sha256File(stack.localPath('host01', VM_DISK))).toBe(before.disk);
    expect(readdirSync(stack.localPath('host01', dirname(VM_DISK)))).toEqual(['disk.0']);
  });

  it('cannot call any control RPC of any agent, not even its own agent or Hello', async () => {
    const tls = loadTls(pkiFiles(stack.pkiDir, 'host02'), 'test');
    for (const host of ['frontend', 'host01', 'host02']) {
      const client = new grpc.Client(
        `127.0.0.1:${stack.agentPort(host)}`,
        clientCredentials(tls),
        channelOptions(host),
      );
      try {
        for (const [name, def] of Object.entries(AgentServiceService)) {
          // An empty request of the method's own type: the refusal must come before any validation.
          const request: unknown = def.requestDeserialize(Buffer.alloc(0));
          const err = await failure(
            new Promise((resolve, reject) =>
              client.makeUnaryRequest(
                def.path,
                def.requestSerialize as (v: unknown) => Buffer,
                def.responseDeserialize as (b: Buffer) => unknown,
                request,
                new grpc.Metadata(),
                { deadline: Date.now() + 10_000 },
                (e, r) => (e ? reject(e) : resolve(r)),
              ),
            ),
          );
          expect(err.code, `${host} ${name}: ${err.message}`).toBe(grpc.status.PERMISSION_DENIED);
          expect(err.reason, `${host} ${name}`).toBe('CALLER_NOT_COORDINATOR');
        }
      } finally {
        client.close();
      }
    }
  });

  it('the coordinator certificate still drives every agent', async () => {
    const c2 = coordinator.host02;
    expect(await call(c2.hello.bind(c2), {})).toMatchObject({ name: 'host02' });
    expect(existsSync(stack.localPath('host02', EVIL))).toBe(true);
  });
});
