/**
 * Two transfer services, host-a and host-b, each with its own datastore root and certificates from
 * one CA, for the TransferService tests. Call useTransferPair() once at the top of a test file: it
 * registers the beforeAll that starts both and the afterAll that closes them (and every service a
 * test pushed onto `extra`). The `let` bindings below are set by that beforeAll; ESM imports are
 * live, so a test reads the running services.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { TlsMaterial } from '../../../common/src/tls.js';
import { ONED_ROOT, scratchDir, makeTls, startService } from './test-support.js';
import type { TransferService } from './transfer-service.js';

export const MiB = 1024 * 1024;

export let work: string;
export let rootA: string;
export let rootB: string;
export let tlsA: TlsMaterial;
export let tlsB: TlsMaterial;
export let a: TransferService;
export let b: TransferService;
export const extra: TransferService[] = [];

export function useTransferPair(): void {
  beforeAll(async () => {
    work = await scratchDir('transfer');
    tlsA = await makeTls(join(work, 'pki'), 'host-a');
    tlsB = await makeTls(join(work, 'pki'), 'host-b');
    rootA = join(work, 'a');
    rootB = join(work, 'b');
    a = await startService('host-a', tlsA, rootA);
    b = await startService('host-b', tlsB, rootB);
    await mkdir(join(rootA, '0'), { recursive: true });
    await mkdir(join(rootB, '0'), { recursive: true });
  });

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), ...extra.map((s) => s.close())]);
    await rm(work, { recursive: true, force: true });
  });
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
