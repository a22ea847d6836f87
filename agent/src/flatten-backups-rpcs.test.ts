import { existsSync } from 'node:fs';
import { readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../../common/src/tools/run-tool.js';
import { call, failure } from '../../test/support/agent/agent-fixture.js';
import { SECOND_AGENT, ds, useImportTestbed } from '../../test/support/agent/import-testbed.js';
import {
  type FabricatedChain,
  fabricateChain,
  filesIn,
  writeSums,
} from '../../test/support/backup-repo-chain.js';
import { imageInfo, imagesIdentical } from '../../test/support/files.js';

/**
 * FlattenBackups through a real agent over mutual TLS on real qcow2 chains of two disks
 * (docs/backups.md#increment_flatten): the oldest kept point then restores (OpenBackupChain, pulled
 * by a second agent) to the bytes it had, every later point too, and an interrupted flatten finishes.
 */
const t = useImportTestbed({ second: true });
const MIB = 1024 * 1024;
const BIDS = ['1a0000000000', '1b0000000000', '1c0000000000', '1d0000000000'];
const point = (bid: string, i: number, disk: number) => ({
  bid,
  writes: [{ pattern: 0x10 + i * 0x10 + disk, offset: i * MIB, length: MIB / 2 }],
});
let work: string;

async function fabricate(vm: number): Promise<FabricatedChain[]> {
  const vmDir = t.local(`100/${vm}`);
  const disks: FabricatedChain[] = [];
  for (const disk of [0, 1]) {
    disks.push(
      await fabricateChain(
        vmDir,
        join(work, String(vm)),
        BIDS.map((b, i) => point(b, i, disk)),
        disk,
      ),
    );
  }
  for (const bid of BIDS) {
    await writeFile(join(vmDir, bid, 'vm.xml'), Buffer.from(`<VM><ID>${vm}</ID></VM>`).toString('base64'));
    await writeSums(join(vmDir, bid), await filesIn(join(vmDir, bid)));
  }
  return disks;
}

const dirOf = (vm: number, bid: string): string => ds(`100/${vm}/${bid}`);
const flatten = (vm: number, bids: string[]) =>
  call(t.client.flattenBackups.bind(t.client), { backupDirs: bids.map((b) => dirOf(vm, b)) });

async function restoresTo(
  vm: number,
  chain: Array<[string, number]>,
  disk: number,
  expected: string,
): Promise<boolean> {
  const offer = await call(t.client.openBackupChain.bind(t.client), {
    chain: chain.map(([bid, inc]) => `${dirOf(vm, bid)}/disk.${disk}.${inc}`),
    receiverName: SECOND_AGENT,
    ttlSeconds: 0,
  });
  const name = `r-${vm}-${disk}-${chain.map((c) => c[1]).join('')}-${Date.now()}`;
  await call(t.second.client.receive.bind(t.second.client), {
    ticket: offer.ticket,
    dataAddress: offer.dataAddress,
    sourceName: 'host01',
    destination: ds(`0/${name}`),
    sparse: true,
  });
  return imagesIdentical(join(t.second.root, '0', name), 'qcow2', expected, 'raw');
}

beforeAll(() => {
  work = join(t.base, 'work');
});

describe('FlattenBackups', () => {
  it('KEEP_LAST 2 of 4: the oldest kept point stands alone and restores, the next one too', async () => {
    const disks = await fabricate(20);
    // increment_flatten merges the first count-keep_last+1 = 3 backups into the third.
    const r = await flatten(20, BIDS.slice(0, 3));
    expect(r.sizeMb).toBeGreaterThan(0);
    expect((await readdir(t.local('100/20'))).sort()).toEqual(BIDS.slice(2));
    for (const disk of [0, 1]) {
      const merged = t.local(`100/20/${BIDS[2]}/disk.${disk}.2`);
      expect((await imageInfo(merged, 'qcow2'))['backing-filename']).toBeUndefined();
      const d = disks[disk] as FabricatedChain;
      expect(await restoresTo(20, [[BIDS[2] as string, 2]], disk, d.expected[2] as string)).toBe(true);
      expect(
        await restoresTo(
          20,
          [
            [BIDS[2] as string, 2],
            [BIDS[3] as string, 3],
          ],
          disk,
          d.expected[3] as string,
        ),
      ).toBe(true);
    }
    // SHA256SUMS vouches for the merged files and still lists vm.xml; nothing is left in progress.
    const sums = await readFile(t.local(`100/20/${BIDS[2]}/SHA256SUMS`), 'utf8');
    expect(
      sums
        .split('\n')
        .filter(Boolean)
        .map((l) => l.slice(66)),
    ).toEqual(['disk.0.2', 'disk.1.2', 'vm.xml']);
    expect((await readdir(t.local(`100/20/${BIDS[2]}`))).filter((n) => n.startsWith('.'))).toEqual([]);
    // A repeat finds the work done and succeeds with the same answer.
    expect((await flatten(20, BIDS.slice(0, 3))).sizeMb).toBe(r.sizeMb);
  });

  it('a flatten interrupted after a merged file replaced the last one finishes on a repeat', async () => {
    const disks = await fabricate(21);
    const last = t.local(`100/21/${BIDS[1]}`);
    // The state a crash leaves between the renames: disk.0 merged and renamed, the list pending.
    const layer = (f: string, below: unknown) => ({
      driver: 'qcow2',
      file: { driver: 'file', filename: f },
      backing: below,
    });
    const spec = layer(join(last, 'disk.0.1'), layer(t.local(`100/21/${BIDS[0]}/disk.0.0`), null));
    const merged = join(last, '.merged');
    await runTool('qemu-img', ['convert', '-q', '-O', 'qcow2', `json:${JSON.stringify(spec)}`, merged]);
    const before = await readFile(join(last, 'SHA256SUMS'));
    await rename(merged, join(last, 'disk.0.1'));
    await writeSums(last, await filesIn(last));
    await rename(join(last, 'SHA256SUMS'), join(last, '.SHA256SUMS.next'));
    await writeFile(join(last, 'SHA256SUMS'), before);
    await flatten(21, BIDS.slice(0, 2));
    expect(existsSync(t.local(`100/21/${BIDS[0]}`))).toBe(false);
    for (const disk of [0, 1]) {
      const d = disks[disk] as FabricatedChain;
      expect(await restoresTo(21, [[BIDS[1] as string, 1]], disk, d.expected[1] as string)).toBe(true);
    }
    expect((await readdir(last)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('a corrupted older file is CHECKSUM_MISMATCH naming it, and nothing changes', async () => {
    await fabricate(22);
    const victim = t.local(`100/22/${BIDS[0]}/disk.1.0`);
    const bytes = await readFile(victim);
    const at = bytes.length - 10;
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    await writeFile(victim, bytes);
    const lastSums = await readFile(t.local(`100/22/${BIDS[1]}/SHA256SUMS`));
    const f = await failure(flatten(22, BIDS.slice(0, 2)));
    expect(f.reason).toBe('CHECKSUM_MISMATCH');
    expect(f.message).toContain(`host01:${dirOf(22, BIDS[0] as string)}/disk.1.0`);
    expect((await readdir(t.local('100/22'))).sort()).toEqual(BIDS);
    expect(await readFile(t.local(`100/22/${BIDS[1]}/SHA256SUMS`))).toEqual(lastSums);
    expect((await readdir(t.local(`100/22/${BIDS[1]}`))).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});
