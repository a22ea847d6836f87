/**
 * Two transfer services, host-a and host-b, each with its own datastore root and certificates from
 * one CA, for the TransferService tests. Call `const pair = useTransferPair()` once at the top of a
 * test file: it registers the beforeAll that starts both and fills in `pair`, and the afterAll that
 * closes them (and every service a test pushed onto `pair.extra`).
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { TlsMaterial } from '../../../common/src/tls.js';
import { ONED_ROOT, scratchDir, makeTls, startService } from './transfer-support.js';
import type { TransferService } from '../../../agent/src/transfer/transfer-service.js';

export { MIB as MiB } from '../../../common/src/units.js';

/** The running pair of one test file; every field but extra is set by useTransferPair's beforeAll. */
export interface TransferPair {
  /** The scratch directory holding the PKI and both roots. */
  work: string;
  rootA: string;
  rootB: string;
  tlsA: TlsMaterial;
  tlsB: TlsMaterial;
  a: TransferService;
  b: TransferService;
  /** Services a test started; closed with the pair. */
  readonly extra: TransferService[];
}

export function useTransferPair(): TransferPair {
  const pair = { extra: [] } as Partial<TransferPair> as TransferPair;

  beforeAll(async () => {
    pair.work = await scratchDir('transfer');
    pair.tlsA = await makeTls(join(pair.work, 'pki'), 'host-a');
    pair.tlsB = await makeTls(join(pair.work, 'pki'), 'host-b');
    pair.rootA = join(pair.work, 'a');
    pair.rootB = join(pair.work, 'b');
    pair.a = await startService('host-a', pair.tlsA, pair.rootA);
    pair.b = await startService('host-b', pair.tlsB, pair.rootB);
    await mkdir(join(pair.rootA, '0'), { recursive: true });
    await mkdir(join(pair.rootB, '0'), { recursive: true });
  });

  afterAll(async () => {
    await Promise.all([pair.a?.close(), pair.b?.close(), ...pair.extra.map((s) => s.close())]);
    await rm(pair.work, { recursive: true, force: true });
  });
  return pair;
}

export const oned = (rel: string): string => `${ONED_ROOT}/${rel}`;

/**
 * OpenSend on `from` (the ticket bound to `to`'s name), Receive on `to`: what the coordinator does
 * for a host-to-host copy.
 */
export async function transfer(
  from: TransferService,
  fromName: string,
  src: string,
  to: TransferService,
  dst: string,
  sparse = true,
) {
  const sent = await from.openSend({ path: oned(src), ttlSeconds: 0, receiverName: to.name });
  const got = await to.receive(
    {
      ticket: sent.ticket,
      dataAddress: sent.dataAddress,
      sourceName: fromName,
      destination: oned(dst),
      sparse,
    },
    new AbortController().signal,
  );
  return { sent, got };
}

export async function tempLeftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.includes('.tmp-') || n.includes('.old-'));
}
