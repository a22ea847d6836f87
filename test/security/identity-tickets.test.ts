// Security review, class 2 (docs/security.md#the-attack-tests): a data-path ticket is bound to the agent the coordinator named when it asked for
// it. A ticket issued for host01 to pull is refused when host02 presents it (its TLS certificate
// names another agent), is not used up by that refusal, and still works for host01.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pkiFiles } from '../../common/src/pki/pki.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { loadTls } from '../../common/src/tls.js';
import type { AgentServiceClient } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { call, failure } from '../support/agent/agent-fixture.js';
import { pull } from '../../agent/src/transfer/data-client.js';
import { agentClientAs } from '../support/identities.js';

const IMG = `${ONED_DATASTORE_LOCATION}/1`;
const SYS = `${ONED_DATASTORE_LOCATION}/0`;
const IMAGE = `${IMG}/0123456789abcdef0123456789abcdef`;
const CONTENT = 'image for VM 46 on host01 only\n';

let stack: Stack;
let scratch: string;
let frontend: AgentServiceClient;
let host01: AgentServiceClient;
let host02: AgentServiceClient;

beforeAll(async () => {
  stack = await Stack.start();
  scratch = await mkdtemp(join(tmpdir(), 'identity-tickets-'));
  const local = stack.localPath('frontend', IMAGE);
  await mkdir(dirname(local), { recursive: true });
  await writeFile(local, CONTENT);
  frontend = agentClientAs(stack, 'frontend', 'coordinator');
  host01 = agentClientAs(stack, 'host01', 'coordinator');
  host02 = agentClientAs(stack, 'host02', 'coordinator');
  // Receive needs the destination's directory, as the coordinator's MakeDir-then-Receive provides.
  for (const c of [host01, host02]) await call(c.makeDir.bind(c), { path: `${SYS}/46` });
});

afterAll(async () => {
  for (const c of [frontend, host01, host02]) c?.close();
  await stack?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const ticketForHost01 = () =>
  call(frontend.openSend.bind(frontend), { path: IMAGE, ttlSeconds: 0, receiverName: 'host01' });

describe('tickets are bound to the agent the coordinator named', () => {
  it("host02 presenting host01's ticket on the data path is refused, and host01 can still redeem it", async () => {
    const sent = await ticketForHost01();
    const temp = join(scratch, 'stolen');
    const err = await pull({
      address: sent.dataAddress,
      serverName: 'frontend',
      tls: loadTls(pkiFiles(stack.pkiDir, 'host02'), 'test'),
      plaintext: false,
      ticket: sent.ticket,
      temp,
      tempReal: temp,
      sparse: true,
      signal: new AbortController().signal,
    }).then(
      () => undefined,
      (e: unknown) => e as { reason?: string; message: string },
    );
    expect(err, 'host02 pulled a ticket issued for host01').toBeDefined();
    expect(err?.reason).toBe('TICKET_INVALID');
    expect(err?.message).not.toContain('\n');
    expect(err?.message).toMatch(/issued for host01.*host02/);
    expect(existsSync(temp)).toBe(false);

    // The refusal did not use the ticket up: the agent it was issued for gets the image.
    const got = await call(host01.receive.bind(host01), {
      ticket: sent.ticket,
      dataAddress: sent.dataAddress,
      sourceName: 'frontend',
      destination: `${SYS}/46/disk.0`,
      sparse: true,
    });
    expect(got.files).toBe(1);
    expect(readFileSync(stack.localPath('host01', `${SYS}/46/disk.0`), 'utf8')).toBe(CONTENT);
  });

  it("host02's agent redeeming host01's ticket (Receive on host02) fails with TICKET_INVALID and writes nothing", async () => {
    const sent = await ticketForHost01();
    const err = await failure(
      call(host02.receive.bind(host02), {
        ticket: sent.ticket,
        dataAddress: sent.dataAddress,
        sourceName: 'frontend',
        destination: `${SYS}/46/disk.0`,
        sparse: true,
      }),
    );
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.reason).toBe('TICKET_INVALID');
    expect(err.message).not.toContain('\n');
    expect(err.message).toMatch(/issued for host01/);
    expect(existsSync(stack.localPath('host02', `${SYS}/46/disk.0`))).toBe(false);
  });

  it('OpenSend without receiver_name issues no ticket', async () => {
    const err = await failure(
      call(frontend.openSend.bind(frontend), { path: IMAGE, ttlSeconds: 0, receiverName: '' }),
    );
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.message).toMatch(/receiver_name is required/);
  });
});
