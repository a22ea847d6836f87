// The agent's mutual TLS and its refusals of unsafe paths, through a real gRPC client.
import { readFileSync, existsSync, symlinkSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { channelOptions } from '../../common/src/tls.js';
import { AgentServiceClient, ImageFormat } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { issueCertificate, pkiFiles } from '../../common/src/pki/pki.js';
import {
  AGENT_NAME,
  LOCATION,
  agentClient,
  call,
  failure,
  ds,
} from '../../test/support/agent/agent-fixture.js';
import { useAgentServer } from '../../test/support/agent/server-test-fixture.js';

const ctx = useAgentServer();

describe('mutual TLS', () => {
  it('answers a client with a certificate from the cloud CA', async () => {
    const res = await call(ctx.client.hello.bind(ctx.client), {});
    expect(res).toEqual({
      name: AGENT_NAME,
      version: '0.1.0',
      locations: [LOCATION],
      dataAddress: ctx.agent.dataAddress,
    });
  });

  it('refuses a client without a certificate', async () => {
    const anonymous = agentClient(ctx.agent.port, ctx.pki.dir, false);
    const err = await failure(call(anonymous.hello.bind(anonymous), {}));
    anonymous.close();
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('refuses a client whose certificate comes from another CA', async () => {
    // The foreign client trusts our CA (so only its own certificate is wrong).
    const foreign = new AgentServiceClient(
      `127.0.0.1:${ctx.agent.port}`,
      grpc.credentials.createSsl(
        readFileSync(pkiFiles(ctx.pki.dir, 'coordinator').ca),
        readFileSync(pkiFiles(ctx.pki.otherDir, 'coordinator').key),
        readFileSync(pkiFiles(ctx.pki.otherDir, 'coordinator').cert),
      ),
      channelOptions(AGENT_NAME),
    );
    const err = await failure(call(foreign.hello.bind(foreign), {}));
    foreign.close();
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe('roles: only the coordinator calls the agent', () => {
  it('refuses another agent of the same CA, before looking at the request', async () => {
    await issueCertificate(ctx.pki.dir, 'host02', ['127.0.0.1']);
    const peer = agentClient(ctx.agent.port, ctx.pki.dir, true, 'host02');
    const err = await failure(call(peer.makeDir.bind(peer), { path: ds('0/from-host02') }));
    peer.close();
    expect(err).toMatchObject({ code: grpc.status.PERMISSION_DENIED, reason: 'CALLER_NOT_COORDINATOR' });
    expect(err.message).toMatch(/^agent host01: MakeDir refused: only the coordinator may call/);
    expect(existsSync(ctx.local('0/from-host02'))).toBe(false);
  });
});

describe('refusals carry the code, the x-reason and a message naming host and path', () => {
  const cases: Array<[string, string, grpc.status, string, string]> = [
    [
      'outside the roots',
      '/etc/passwd',
      grpc.status.PERMISSION_DENIED,
      'PATH_OUTSIDE_ROOTS',
      'path host01:/etc/passwd: outside',
    ],
    [
      'a ".." component',
      ds('0/../../../../etc'),
      grpc.status.INVALID_ARGUMENT,
      'UNSAFE_PATH',
      'path host01:',
    ],
    ['";rm -rf"', ds('0/x;rm -rf /'), grpc.status.INVALID_ARGUMENT, 'UNSAFE_PATH', 'contains ";"'],
    ['a relative path', 'var/lib', grpc.status.INVALID_ARGUMENT, 'UNSAFE_PATH', 'must be an absolute path'],
    [
      'a missing path',
      '',
      grpc.status.INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      'delete on host01: path is required',
    ],
  ];
  it.each(cases)('Delete of %s', async (_title, path, code, reason, message) => {
    const err = await failure(call(ctx.client.delete.bind(ctx.client), { path }));
    expect(err).toMatchObject({ code, reason });
    expect(err.message).toContain(message);
  });

  it('a symlink planted in a datastore cannot lead outside', async () => {
    symlinkSync('/etc', ctx.local('0/etc'));
    for (const attempt of [
      () => call(ctx.client.delete.bind(ctx.client), { path: ds('0/etc/hostname') }),
      () => call(ctx.client.makeDir.bind(ctx.client), { path: ds('0/etc/evil') }),
      () => call(ctx.client.stat.bind(ctx.client), { path: ds('0/etc/passwd'), follow: false }),
      () =>
        call(ctx.client.resize.bind(ctx.client), {
          path: ds('0/etc'),
          sizeMb: 1,
          preallocate: false,
          format: ImageFormat.IMAGE_FORMAT_RAW,
        }),
    ]) {
      const err = await failure(attempt());
      expect(err).toMatchObject({ code: grpc.status.PERMISSION_DENIED, reason: 'PATH_OUTSIDE_ROOTS' });
      expect(err.message).toContain('leads through a symlink to /etc');
    }
    expect(existsSync('/etc/evil')).toBe(false);
  });
});
