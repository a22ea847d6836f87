// The per-file end-to-end check between two TransferServices: XXH3 under TLS, SHA-256 in the
// authenticated plaintext mode, chosen by the sender from the receiver's offer. A relay between the
// two agents alters what the sender sent after the sender hashed it and before the receiver does
// (under TLS it terminates both legs, holding each side's certificate): what a bit flipped in
// either agent's memory between disk and TLS looks like. The transfer must fail and leave nothing.
import { mkdir, readdir, truncate, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import type { TlsMaterial } from '../../../common/src/tls.js';
import { qemuWrite, startService } from '../../../test/support/agent/transfer-support.js';
import { MiB, oned, useTransferPair } from '../../../test/support/agent/transfer-test-fixture.js';
import { tlsCipherOptions } from './tls-options.js';

const pair = useTransferPair();

/** Under TLS, the relay poses as the sender to the receiver and as the receiver to the sender. */
interface RelayTls {
  asSender: TlsMaterial;
  asReceiver: TlsMaterial;
}

/**
 * A relay that hands `edit` every chunk the sender sends (decrypted under TLS), in order, to change
 * in place before passing it on.
 */
async function tamperingRelay(
  target: string,
  edit: (chunk: Buffer) => void,
  as?: RelayTls,
): Promise<{ address: string; close(): void }> {
  const host = target.slice(0, target.lastIndexOf(':'));
  const port = Number(target.slice(target.lastIndexOf(':') + 1));
  const sockets = new Set<net.Socket>();
  const onClient = (client: net.Socket): void => {
    const upstream = as
      ? tls.connect({
          host,
          port,
          ...as.asReceiver,
          checkServerIdentity: () => undefined,
          ...tlsCipherOptions,
        })
      : net.connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      edit(chunk);
      client.write(chunk);
    });
    upstream.on('end', () => client.end());
  };
  const server = as
    ? tls.createServer(
        { ...as.asSender, requestCert: true, rejectUnauthorized: true, ...tlsCipherOptions },
        onClient,
      )
    : net.createServer(onClient);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/**
 * The test files are filled with MARK, which no header or JSON control frame contains, so flipping
 * the `nth` MARK byte lands in file data.
 */
const MARK = 0xa5;
function flipNthMark(nth: number): (chunk: Buffer) => void {
  let seen = 0;
  return (chunk) => {
    for (let i = 0; i < chunk.length && seen < nth; i++)
      if (chunk[i] === MARK && ++seen === nth) chunk[i] = MARK ^ 0x01;
  };
}

/**
 * Records whether `text` passed (also across two chunks), and replaces it with `replacement` (same
 * length) when given and it lies within one chunk: the manifest is one small write, and under TLS
 * one record.
 */
function watchFor(
  text: string,
  replacement?: string,
): { seen: () => boolean; edit: (chunk: Buffer) => void } {
  let seen = false;
  let tail = Buffer.alloc(0);
  return {
    seen: () => seen,
    edit: (chunk) => {
      const at = chunk.indexOf(text);
      if (at >= 0 && replacement !== undefined) chunk.write(replacement, at);
      if (at >= 0 || Buffer.concat([tail, chunk.subarray(0, text.length)]).includes(text)) seen = true;
      tail = Buffer.from(chunk.subarray(Math.max(0, chunk.length - text.length)));
    },
  };
}

type Mode = 'tls' | 'plaintext';

/**
 * host-a sends a 64 MiB sparse file holding `dataBytes` of MARK to host-b through a relay applying
 * `edit`; resolves with what Receive threw (undefined on success) and what host-b's datastore holds.
 */
async function relayedTransfer(
  mode: Mode,
  dataBytes: number,
  edit: (chunk: Buffer) => void,
): Promise<{ err: unknown; left: string[] }> {
  const tag = `${mode}-${dataBytes}-${Math.random().toString(36).slice(2, 8)}`;
  const [rootA, rootB] = [join(pair.work, `sa-${tag}`), join(pair.work, `sb-${tag}`)];
  const extra = { plaintextData: mode === 'plaintext' };
  const pa = await startService('host-a', pair.tlsA, rootA, extra);
  const pb = await startService('host-b', pair.tlsB, rootB, extra);
  pair.extra.push(pa, pb);
  await mkdir(join(rootA, '0'), { recursive: true });
  await mkdir(join(rootB, '0'), { recursive: true });
  const src = join(rootA, '0', 'flip.raw');
  await writeFile(src, '');
  await truncate(src, 64 * MiB);
  await qemuWrite(src, 'raw', [[4 * MiB, dataBytes, MARK]]);
  const sent = await pa.openSend({ path: oned('0/flip.raw'), ttlSeconds: 0, receiverName: 'host-b' });
  const as = mode === 'tls' ? { asSender: pair.tlsA, asReceiver: pair.tlsB } : undefined;
  const relay = await tamperingRelay(sent.dataAddress, edit, as);
  try {
    const err = await pb
      .receive(
        {
          ticket: sent.ticket,
          dataAddress: relay.address,
          sourceName: 'host-a',
          destination: oned('0/flip.raw'),
          sparse: true,
        },
        new AbortController().signal,
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    return { err, left: await readdir(join(rootB, '0')) };
  } finally {
    relay.close();
  }
}

describe('TransferService end-to-end check', () => {
  it.each([
    ['tls', 'xxh3-64'],
    ['plaintext', 'sha256'],
  ] as const)(
    '%s: the sender names the check it chose (%s) and an unaltered transfer lands',
    async (mode, check) => {
      const named = watchFor(`"digest":"${check}"`);
      const { err, left } = await relayedTransfer(mode, 2 * MiB, named.edit);
      expect(err).toBeUndefined();
      expect(named.seen()).toBe(true);
      expect(left).toEqual(['flip.raw']);
    },
  );

  it.each([
    ['tls', 'xxh3-64', 'a small file', 2 * MiB],
    ['tls', 'xxh3-64', 'a large file', 40 * MiB],
    ['plaintext', 'sha256', 'a small file, hashed inline on both sides', 2 * MiB],
    ['plaintext', 'sha256', 'a large file, hashed in a worker by the sender', 40 * MiB],
  ] as const)(
    '%s: a byte altered between the agents fails %s with CHECKSUM_MISMATCH (%s), nothing is left',
    async (mode, check, _what, dataBytes) => {
      const { err, left } = await relayedTransfer(mode, dataBytes, flipNthMark(Math.floor(dataBytes / 2)));
      expect(err).toBeInstanceOf(StorageError);
      expect(err).toMatchObject({ reason: 'CHECKSUM_MISMATCH' });
      expect((err as Error).message).toMatch(new RegExp(`checksum mismatch on "\\.".*${check}`));
      expect(left).toEqual([]);
    },
  );

  it('a sender naming a check this agent does not know is refused in one line, nothing is left', async () => {
    const newer = watchFor('"digest":"xxh3-64"', '"digest":"xxh9-64"');
    const { err, left } = await relayedTransfer('tls', 2 * MiB, newer.edit);
    expect(newer.seen()).toBe(true);
    expect(err).toMatchObject({ reason: 'TRANSFER_FAILED' });
    expect((err as Error).message).toMatch(
      /checks data with "xxh9-64", an algorithm this agent does not know/,
    );
    expect((err as Error).message).not.toContain('\n');
    expect(left).toEqual([]);
  });
});
