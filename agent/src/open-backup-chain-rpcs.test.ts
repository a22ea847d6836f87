import { createHash } from 'node:crypto';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../../common/src/tools/run-tool.js';
import type { OpenBackupChainRequest } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { call, failure } from '../../test/support/agent/agent-fixture.js';
import { SECOND_AGENT, ds, useImportTestbed } from '../../test/support/agent/import-testbed.js';
import {
  type FabricatedChain,
  fabricateChain,
  layerOnly,
  qemuIoWrite,
  writeSums,
} from '../../test/support/backup-repo-chain.js';
import { imageInfo, imagesIdentical } from '../../test/support/files.js';

/**
 * OpenBackupChain through a real agent (host01, the backup server) over mutual TLS, pulled with
 * Receive by a second real agent (host02): real qcow2 chains laid out as the backup hooks write
 * them, merged with every layer pinned (docs/backups.md#restoring-from-the-repository).
 */
const t = useImportTestbed({ second: true });
const MIB = 1024 * 1024;
const POINTS = [
  { bid: '0a0000000000', writes: [{ pattern: 0x11, offset: 0, length: MIB }] },
  { bid: '0b0000000000', writes: [{ pattern: 0x22, offset: MIB, length: MIB }] },
  {
    bid: '0c0000000000',
    writes: [
      { pattern: 0x33, offset: 2 * MIB, length: MIB / 2 },
      { pattern: 0x44, offset: 0, length: 64 * 1024 },
    ],
  },
];
const repo = (vm: number, rel = ''): string => ds(`100/${vm}${rel === '' ? '' : `/${rel}`}`);
const onedChain = (vm: number, c: FabricatedChain, upTo: number): string[] =>
  c.bids.slice(0, upTo + 1).map((bid, inc) => repo(vm, `${bid}/disk.0.${inc}`));
let chain: FabricatedChain;
let work: string;

beforeAll(async () => {
  work = join(t.base, 'work');
  chain = await fabricateChain(t.local('100/6'), work, POINTS);
});

function open(req: Partial<OpenBackupChainRequest>) {
  return call(t.client.openBackupChain.bind(t.client), {
    chain: [],
    receiverName: SECOND_AGENT,
    ttlSeconds: 0,
    ...req,
  });
}

/** Opens `files` on host01 and pulls it into host02's `0/<name>`; returns the local path there. */
async function restore(files: string[], name: string): Promise<{ path: string; virtualSize: number }> {
  const offer = await open({ chain: files });
  await call(t.second.client.receive.bind(t.second.client), {
    ticket: offer.ticket,
    dataAddress: offer.dataAddress,
    sourceName: 'host01',
    destination: ds(`0/${name}`),
    sparse: true,
  });
  return { path: join(t.second.root, '0', name), virtualSize: offer.virtualSize };
}

/** Names under the backup directories of `vm` that are work in progress (dot-names). */
async function dotNames(vm: number): Promise<string[]> {
  const found: string[] = [];
  for (const bid of await readdir(t.local(`100/${vm}`))) {
    const inside = await readdir(t.local(`100/${vm}/${bid}`)).catch(() => []);
    found.push(...inside.filter((n) => n.startsWith('.')));
  }
  return found;
}

const removedLine = (claimed: boolean) => (l: Record<string, unknown>) =>
  l.msg === 'staged send file removed' && l.claimed === claimed;

describe('OpenBackupChain', () => {
  it.each([0, 1, 2])('restores point %i to the exact bytes of the disk then', async (k) => {
    const before = t.log.lines.filter(removedLine(true)).length;
    const got = await restore(onedChain(6, chain, k), `restored-${k}`);
    expect(got.virtualSize).toBe(4 * MIB);
    expect(await imagesIdentical(got.path, 'qcow2', chain.expected[k] as string, 'raw')).toBe(true);
    expect((await imageInfo(got.path, 'qcow2'))['backing-filename']).toBeUndefined();
    if (k === 0) {
      // A lone FULL file is sent as it is.
      const sha = async (f: string) =>
        createHash('sha256')
          .update(await readFile(f))
          .digest('hex');
      expect(await sha(got.path)).toBe(await sha(chain.files[0] as string));
    } else {
      await t.log.waitFor(
        (l) => removedLine(true)(l) && t.log.lines.filter(removedLine(true)).length > before,
      );
    }
    expect(await dotNames(6)).toEqual([]);
  });

  it('an unused ticket takes its staged file with it when it expires', async () => {
    await open({ chain: onedChain(6, chain, 2), ttlSeconds: 1 });
    expect((await dotNames(6)).length).toBe(1);
    await t.log.waitFor(removedLine(false), 15_000);
    expect(await dotNames(6)).toEqual([]);
  });

  it('a corrupted byte is CHECKSUM_MISMATCH naming the file, and nothing is left', async () => {
    const c = await fabricateChain(t.local('100/7'), join(work, '7'), POINTS);
    const victim = c.files[1] as string;
    const bytes = await readFile(victim);
    const at = bytes.length - 100;
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    await writeFile(victim, bytes);
    const f = await failure(open({ chain: onedChain(7, c, 2) }));
    expect(f.code).toBe(grpc.status.DATA_LOSS);
    expect(f.reason).toBe('CHECKSUM_MISMATCH');
    expect(f.message).toContain(`host01:${repo(7, `${c.bids[1]}/disk.0.1`)} does not match its SHA256SUMS`);
    expect(await dotNames(7)).toEqual([]);
  });

  it('a missing increment is NOT_FOUND naming the directory or the file', async () => {
    const c = await fabricateChain(t.local('100/8'), join(work, '8'), POINTS);
    const files = onedChain(8, c, 2);
    const gone = [files[0] as string, repo(8, 'ffffffffffff/disk.0.1'), files[2] as string];
    let f = await failure(open({ chain: gone }));
    expect([f.code, f.reason]).toEqual([grpc.status.NOT_FOUND, 'NOT_FOUND']);
    expect(f.message).toContain(`backup directory host01:${repo(8, 'ffffffffffff')} is missing`);
    await rm(c.files[2] as string);
    f = await failure(open({ chain: files }));
    expect([f.code, f.reason]).toEqual([grpc.status.NOT_FOUND, 'NOT_FOUND']);
    expect(f.message).toContain(`backup file host01:${files[2]} is missing`);
  });

  it('never follows a backing name written in a file: an absolute one to another file', async () => {
    const c = await fabricateChain(t.local('100/9'), join(work, '9'), POINTS.slice(0, 2));
    const evil = t.local('100/9/evil.qcow2');
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', evil, String(4 * MIB)]);
    await qemuIoWrite(layerOnly(evil), { pattern: 0x66, offset: 0, length: 4 * MIB });
    const inc = c.files[1] as string;
    await runTool('qemu-img', ['rebase', '-q', '-u', '-f', 'qcow2', '-F', 'qcow2', '-b', evil, inc]);
    await writeSums(join(inc, '..'), ['disk.0.1']);
    const both = await restore(onedChain(9, c, 1), 'evil-both');
    expect(await imagesIdentical(both.path, 'qcow2', c.expected[1] as string, 'raw')).toBe(true);
    // Alone, the increment reads as itself over nothing: zeros where it holds no data, never 0x66.
    const alone = await restore([onedChain(9, c, 1)[1] as string], 'evil-alone');
    const zeros = join(work, 'inc-alone.raw');
    await runTool('qemu-img', ['create', '-q', '-f', 'raw', zeros, String(4 * MIB)]);
    await qemuIoWrite(zeros, { pattern: 0x22, offset: MIB, length: MIB }, 'raw');
    expect(await imagesIdentical(alone.path, 'qcow2', zeros, 'raw')).toBe(true);
  });

  it.each([
    ['a path not in the repository shape', [ds('0/disk.0')], 'INVALID_ARGUMENT'],
    [
      'files of two VMs',
      [repo(6, '0a0000000000/disk.0.0'), repo(7, '0b0000000000/disk.0.1')],
      'INVALID_ARGUMENT',
    ],
    [
      'increments going down',
      [repo(6, '0b0000000000/disk.0.1'), repo(6, '0a0000000000/disk.0.0')],
      'INVALID_ARGUMENT',
    ],
    ['a path outside the roots', ['/etc/one/6/0a0000000000/disk.0.0'], 'PATH_OUTSIDE_ROOTS'],
  ])('refuses %s', async (_what, files, reason) => {
    const f = await failure(open({ chain: files }));
    expect(f.reason).toBe(reason);
  });
});
