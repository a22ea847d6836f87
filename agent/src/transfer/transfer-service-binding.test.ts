// Tickets are bound to the receiving agent (security review, class 2): the sender serves a ticket only to the
// client whose TLS certificate carries the name the coordinator gave at OpenSend.
import { readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTls, startService } from '../../../test/support/agent/transfer-support.js';
import { oned, tempLeftovers, useTransferPair } from '../../../test/support/agent/transfer-test-fixture.js';

const pair = useTransferPair();

describe('ticket binding', () => {
  it("another agent of the same CA presenting host-b's ticket is refused; host-b still redeems it", async () => {
    const c = await startService(
      'host-c',
      await makeTls(join(pair.work, 'pki'), 'host-c'),
      join(pair.work, 'c'),
    );
    pair.extra.push(c);
    await mkdir(join(pair.work, 'c', '0'), { recursive: true });
    await writeFile(join(pair.rootA, '0', 'bound'), 'for host-b only');
    const sent = await pair.a.openSend({ path: oned('0/bound'), ttlSeconds: 0, receiverName: 'host-b' });
    const req = {
      ticket: sent.ticket,
      dataAddress: sent.dataAddress,
      sourceName: 'host-a',
      destination: oned('0/bound'),
      sparse: true,
    };
    const refused = c.receive(req, new AbortController().signal);
    await expect(refused).rejects.toMatchObject({ reason: 'TICKET_INVALID' });
    await expect(refused).rejects.toThrow(/: ticket was issued for host-b to pull, not for host-c$/);
    expect(await readdir(join(pair.work, 'c', '0'))).toEqual([]);

    await pair.b.receive(req, new AbortController().signal);
    expect(await readFile(join(pair.rootB, '0', 'bound'), 'utf8')).toBe('for host-b only');
    expect(await tempLeftovers(join(pair.rootB, '0'))).toEqual([]);
  });

  it('OpenSend without a receiver, or with one that is not an agent name, issues no ticket', async () => {
    await writeFile(join(pair.rootA, '0', 'unbound'), 'x');
    await expect(
      pair.a.openSend({ path: oned('0/unbound'), ttlSeconds: 0, receiverName: '' }),
    ).rejects.toMatchObject({
      reason: 'INVALID_ARGUMENT',
      message: 'OpenSend: receiver_name is required (the agent that will pull)',
    });
    await expect(
      pair.a.openSend({ path: oned('0/unbound'), ttlSeconds: 0, receiverName: 'host b;x' }),
    ).rejects.toMatchObject({
      reason: 'INVALID_ARGUMENT',
      message: 'OpenSend: receiver_name "host b;x" is not an agent name',
    });
  });
});
