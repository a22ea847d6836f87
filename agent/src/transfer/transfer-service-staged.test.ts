import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { oned, useTransferPair } from '../../../test/support/agent/transfer-test-fixture.js';
import { sha256File, startService } from '../../../test/support/agent/transfer-support.js';

/**
 * openStagedFile (docs/backups.md#restoring-from-the-repository): a file made only to be sent is
 * removed once its send ends, or when the service stops with the ticket unused.
 */
const pair = useTransferPair();

function released(file: string): { release: () => Promise<void>; done: Promise<void> } {
  let resolve: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolve = r));
  return {
    release: async () => {
      await rm(file, { force: true });
      resolve();
    },
    done,
  };
}

describe('openStagedFile', () => {
  it('removes the file once the receiver has it', async () => {
    const file = join(pair.rootA, '0', '.staged-1');
    await writeFile(file, Buffer.alloc(256 * 1024, 7));
    const want = await sha256File(file);
    const r = released(file);
    const sent = await pair.a.openStagedFile({
      path: oned('0/staged-1'),
      file,
      release: r.release,
      receiverName: 'host-b',
      ttlSeconds: 0,
    });
    await pair.b.receive(
      {
        ticket: sent.ticket,
        dataAddress: sent.dataAddress,
        sourceName: 'host-a',
        destination: oned('0/got-1'),
        sparse: true,
      },
      new AbortController().signal,
    );
    await r.done;
    expect(existsSync(file)).toBe(false);
    expect(await sha256File(join(pair.rootB, '0', 'got-1'))).toBe(want);
  });

  it('removes an unsent file when the service stops', async () => {
    const root = join(pair.work, 'c');
    const service = await startService('host-a', pair.tlsA, root);
    const file = join(root, '.staged-2');
    await writeFile(file, 'x');
    const r = released(file);
    await service.openStagedFile({
      path: oned('staged-2'),
      file,
      release: r.release,
      receiverName: 'host-b',
      ttlSeconds: 0,
    });
    expect(existsSync(file)).toBe(true);
    await service.close();
    await r.done;
    expect(existsSync(file)).toBe(false);
  });
});
