// TransferService refusing what it must (tickets, certificates, paths) and failing cleanly
// (cancel, a full filesystem); corruption between the two agents is transfer-service-digest.test.ts.
import { mkdir, readFile, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { entryAppears, firstChange } from '../../../test/support/files.js';
import {
  qemuWrite,
  sha256File,
  makeTls,
  startService,
} from '../../../test/support/agent/transfer-support.js';
import { ticketId } from './session-keys.js';
import { FrameType, controlFrame } from './wire.js';
import {
  MiB,
  oned,
  tempLeftovers,
  transfer,
  useTransferPair,
} from '../../../test/support/agent/transfer-test-fixture.js';

const pair = useTransferPair();

describe('TransferService data path', () => {
  it('refuses a ticket used twice, and an expired ticket', async () => {
    await writeFile(join(pair.rootA, '0', 'once'), 'x');
    const sent = await pair.a.openSend({ path: oned('0/once'), ttlSeconds: 0, receiverName: 'host-b' });
    const req = {
      ticket: sent.ticket,
      dataAddress: sent.dataAddress,
      sourceName: 'host-a',
      destination: oned('0/once'),
      sparse: true,
    };
    await pair.b.receive(req, new AbortController().signal);
    const again = pair.b.receive(req, new AbortController().signal);
    await expect(again).rejects.toThrow(/ticket already used/);
    await expect(again).rejects.toMatchObject({ reason: 'TICKET_INVALID' });

    // Expiry by an injected clock: a sender (host-a's certificate, its own root) whose time the
    // test moves on by the ticket's whole ttl.
    let clock = Date.now();
    const timedRoot = join(pair.work, 'a-clock');
    const timed = await startService('host-a', pair.tlsA, timedRoot, { now: () => clock });
    pair.extra.push(timed);
    await mkdir(join(timedRoot, '0'));
    await writeFile(join(timedRoot, '0', 'once'), 'x');
    const short = await timed.openSend({ path: oned('0/once'), ttlSeconds: 1, receiverName: 'host-b' });
    clock += 1000;
    await expect(
      pair.b.receive(
        { ...req, ticket: short.ticket, dataAddress: short.dataAddress, destination: oned('0/late') },
        new AbortController().signal,
      ),
    ).rejects.toThrow(/ticket expired/);
    expect(await tempLeftovers(join(pair.rootB, '0'))).toEqual([]);
  });

  it('the data listener refuses a client whose certificate comes from another CA', async () => {
    const other = await makeTls(join(pair.work, 'pki-other'), 'host-a');
    await writeFile(join(pair.rootA, '0', 'guarded'), 'guarded');
    const sent = await pair.a.openSend({ path: oned('0/guarded'), ttlSeconds: 0, receiverName: 'host-b' });
    const port = Number(sent.dataAddress.split(':')[1]);
    // This client trusts A's CA (so it would accept A), but its own certificate is foreign.
    const outcome = await new Promise<string>((resolve) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port,
        ca: pair.tlsA.ca,
        cert: other.cert,
        key: other.key,
        servername: 'host-a',
      });
      let got = 0;
      s.on('secureConnect', () =>
        s.write(
          controlFrame(FrameType.HELLO, {
            version: 1,
            ticketId: ticketId(sent.ticket),
            nonce: '00'.repeat(16),
          }),
        ),
      );
      s.on('data', (d: Buffer) => (got += d.length));
      s.on('error', (e) => resolve(`refused: ${e.message}`));
      s.on('close', () => resolve(got > 0 ? 'answered' : 'refused: closed'));
    });
    expect(outcome).toMatch(/^refused/);
    // The ticket is still good for the rightful receiver.
    await pair.b.receive(
      {
        ticket: sent.ticket,
        dataAddress: sent.dataAddress,
        sourceName: 'host-a',
        destination: oned('0/guarded'),
        sparse: true,
      },
      new AbortController().signal,
    );
  });

  it('a receiver with a foreign CA refuses the sender, and a sender with the wrong name is refused', async () => {
    const foreign = await startService(
      'host-a',
      await makeTls(join(pair.work, 'pki-other'), 'host-a'),
      join(pair.work, 'c'),
    );
    pair.extra.push(foreign);
    await mkdir(join(pair.work, 'c', '0'), { recursive: true });
    await writeFile(join(pair.rootA, '0', 'secret'), 'secret');
    const sent = await pair.a.openSend({ path: oned('0/secret'), ttlSeconds: 0, receiverName: 'host-b' });
    const req = {
      ticket: sent.ticket,
      dataAddress: sent.dataAddress,
      sourceName: 'host-a',
      destination: oned('0/secret'),
      sparse: true,
    };
    await expect(foreign.receive(req, new AbortController().signal)).rejects.toThrow(/TLS|reset|closed/);
    await expect(readdir(join(pair.work, 'c', '0'))).resolves.toEqual([]);

    // The right CA but the wrong name: the receiver must not talk to it.
    await expect(
      pair.b.receive({ ...req, sourceName: 'host-x' }, new AbortController().signal),
    ).rejects.toThrow(/TLS: .*host-x/);
    // The ticket survived both refusals: neither proved it held it.
    await pair.b.receive(req, new AbortController().signal);
    expect(await readFile(join(pair.rootB, '0', 'secret'), 'utf8')).toBe('secret');
  });

  it('refuses paths outside the roots and reports a missing source', async () => {
    await expect(
      pair.a.openSend({ path: oned('0/../../etc/passwd'), ttlSeconds: 0, receiverName: 'host-b' }),
    ).rejects.toMatchObject({
      reason: 'PATH_OUTSIDE_ROOTS',
    });
    await expect(
      pair.a.openSend({ path: oned('0/nothing'), ttlSeconds: 0, receiverName: 'host-b' }),
    ).rejects.toMatchObject({
      reason: 'NOT_FOUND',
    });
    await writeFile(join(pair.rootA, '0', 'x'), 'x');
    const sent = await pair.a.openSend({ path: oned('0/x'), ttlSeconds: 0, receiverName: 'host-b' });
    await expect(
      pair.b.receive(
        {
          ticket: sent.ticket,
          dataAddress: sent.dataAddress,
          sourceName: 'host-a',
          destination: '/etc/x',
          sparse: true,
        },
        new AbortController().signal,
      ),
    ).rejects.toMatchObject({ reason: 'PATH_OUTSIDE_ROOTS' });
  });

  it('leaves no temporary behind when cancelled mid-transfer', async () => {
    const src = join(pair.rootA, '0', 'big.raw');
    await writeFile(src, '');
    await truncate(src, 512 * MiB);
    await qemuWrite(src, 'raw', [[0, 384 * MiB, 0x3c]]);
    const sent = await pair.a.openSend({ path: oned('0/big.raw'), ttlSeconds: 0, receiverName: 'host-b' });
    const ac = new AbortController();
    const dir = join(pair.rootB, '0');
    // Cancel once data is being written: the temporary has appeared and then changed.
    const temp = entryAppears(dir, (n) => n.includes('.tmp-'));
    const watcher = temp.appeared.then(async (name) => {
      await firstChange(join(dir, name));
      ac.abort();
    });
    const result = pair.b.receive(
      {
        ticket: sent.ticket,
        dataAddress: sent.dataAddress,
        sourceName: 'host-a',
        destination: oned('0/big.raw'),
        sparse: true,
      },
      ac.signal,
    );
    await expect(result).rejects.toThrow(/cancelled/);
    await watcher;
    temp.close();
    expect(await tempLeftovers(dir)).toEqual([]);
    await expect(stat(join(dir, 'big.raw'))).rejects.toThrow(/ENOENT/);
  });
});

describe('TransferService on a full filesystem', () => {
  let mnt: string | undefined;

  beforeAll(async () => {
    const dir = join(pair.rootB, 'full');
    await mkdir(dir, { recursive: true });
    try {
      await runTool('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dir]);
      mnt = dir;
    } catch {
      mnt = undefined; // not root: the test below reports itself skipped
    }
  });

  afterAll(async () => {
    if (mnt) await runTool('umount', [mnt]);
  });

  it('fails with NO_SPACE, leaves no temporary and the source intact', async (ctx) => {
    if (!mnt) ctx.skip();
    const src = join(pair.rootA, '0', 'sixteen.raw');
    await writeFile(src, '');
    await truncate(src, 64 * MiB);
    await qemuWrite(src, 'raw', [[0, 16 * MiB, 0x42]]);
    const before = await sha256File(src);
    const err = await transfer(pair.a, 'host-a', '0/sixteen.raw', pair.b, 'full/sixteen.raw').catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ reason: 'NO_SPACE' });
    expect((err as Error).message).toMatch(
      /^receive host-b:\/var\/lib\/one\/datastores\/full\/sixteen.raw from host-a .*no space/,
    );
    expect(await readdir(mnt as string)).toEqual([]);
    expect(await sha256File(src)).toBe(before);
  });
});
