// Conformance of the agent's data-path RPCs (OpenSend, Receive) against a real agent over mutual
// TLS. The agent pulls from its own data listener: its certificate carries the receiver name the
// ticket is bound to, as another agent's would.
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { FileKind } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { AGENT_NAME, call, ds } from '../support/agent/agent-fixture.js';
import { expectFailure, expectSameEveryTime, useConformanceAgent } from './support/conformance-agent.js';

const c = useConformanceAgent();
const { INVALID_ARGUMENT, PERMISSION_DENIED } = grpc.status;

const openSend = (path: string, receiverName = AGENT_NAME) =>
  call(c.client.openSend.bind(c.client), { path, ttlSeconds: 0, receiverName });

describe('OpenSend', () => {
  it('describes what it will send and issues a fresh ticket each time', async () => {
    writeFileSync(c.local(c.tracker.track('0/send')), 'payload');
    const tickets = new Set<string>();
    const r = await expectSameEveryTime(
      async () => {
        const sent = await openSend(ds('0/send'));
        tickets.add(sent.ticket);
        return sent;
      },
      (s) => ({ kind: s.kind, bytes: s.dataBytes, entries: s.entries, address: s.dataAddress }),
    );
    expect(r).toMatchObject({ kind: FileKind.FILE_KIND_FILE, bytes: 7, entries: 1 });
    expect(tickets.size).toBe(10);
  });

  it('a missing path or receiver_name is INVALID_ARGUMENT naming it; a link out of the roots PATH_OUTSIDE_ROOTS', async () => {
    writeFileSync(c.local(c.tracker.track('0/send2')), 'x');
    symlinkSync('/etc/hostname', c.local(c.tracker.track('0/send-out')));
    await expectFailure(openSend(''), INVALID_ARGUMENT, 'INVALID_ARGUMENT', /path/);
    await expectFailure(openSend(ds('0/send2'), ''), INVALID_ARGUMENT, 'INVALID_ARGUMENT', /receiver_name/);
    await expectFailure(openSend(ds('0/send-out')), PERMISSION_DENIED, 'PATH_OUTSIDE_ROOTS');
  });
});

describe('Receive', () => {
  const receive = async (source: string, destination: string, ticket?: string) => {
    const sent = await openSend(source);
    return call(c.client.receive.bind(c.client), {
      ticket: ticket ?? sent.ticket,
      dataAddress: sent.dataAddress,
      sourceName: AGENT_NAME,
      destination,
      sparse: true,
    });
  };

  it('pulls the file into place with its checksum; a repeat (a new ticket) gives the same file', async () => {
    writeFileSync(c.local(c.tracker.track('0/recv-src')), 'received bytes');
    const destination = c.made('0/recv-dst');
    const r = await expectSameEveryTime(
      () => receive(ds('0/recv-src'), destination),
      (g) => ({ bytes: g.bytes, files: g.files, digest: g.digest }),
    );
    expect(r).toMatchObject({ bytes: 14, files: 1 });
    expect(readFileSync(c.local('0/recv-dst'), 'utf8')).toBe('received bytes');
  });

  it('a used ticket is TICKET_INVALID; a destination outside the roots PATH_OUTSIDE_ROOTS; nothing is left', async () => {
    writeFileSync(c.local(c.tracker.track('0/recv-src2')), 'x');
    const sent = await openSend(ds('0/recv-src2'));
    const req = {
      ticket: sent.ticket,
      dataAddress: sent.dataAddress,
      sourceName: AGENT_NAME,
      destination: c.made('0/recv-once'),
      sparse: true,
    };
    await call(c.client.receive.bind(c.client), req);
    await expectFailure(
      call(c.client.receive.bind(c.client), req),
      PERMISSION_DENIED,
      'TICKET_INVALID',
      /already used/,
    );
    await expectFailure(receive(ds('0/recv-src2'), '/etc/x'), PERMISSION_DENIED, 'PATH_OUTSIDE_ROOTS');
  });
});
