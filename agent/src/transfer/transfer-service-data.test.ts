// TransferService moving files, images and VM directories between two services on loopback.
import { lstat, mkdir, readdir, readlink, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { FileKind } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import {
  allocatedBytes,
  qemuWrite,
  sha256File,
  startService,
} from '../../../test/support/agent/transfer-support.js';
import {
  MiB,
  tempLeftovers,
  transfer,
  oned,
  useTransferPair,
} from '../../../test/support/agent/transfer-test-fixture.js';

const pair = useTransferPair();

describe('TransferService data path', () => {
  it('moves a 256 MiB sparse raw image: same bytes, same holes', async () => {
    const src = join(pair.rootA, '0', 'sparse.raw');
    await writeFile(src, '');
    await truncate(src, 256 * MiB);
    await qemuWrite(src, 'raw', [
      [0, 64 * 1024, 0x11],
      [10 * MiB, 3 * MiB, 0x22],
      [100 * MiB + 4096, 512 * 1024, 0x33],
      [256 * MiB - 8192, 8192, 0x44],
    ]);
    const { sent, got } = await transfer(pair.a, 'host-a', '0/sparse.raw', pair.b, '0/sparse.raw');
    const dst = join(pair.rootB, '0', 'sparse.raw');
    expect(sent.kind).toBe(FileKind.FILE_KIND_FILE);
    expect(sent.dataBytes).toBeLessThan(8 * MiB);
    expect(got.bytes).toBe(sent.dataBytes);
    expect(got.files).toBe(1);
    expect((await stat(dst)).size).toBe(256 * MiB);
    expect(await sha256File(dst)).toBe(await sha256File(src));
    expect(Math.abs((await allocatedBytes(dst)) - (await allocatedBytes(src)))).toBeLessThanOrEqual(MiB);
    expect(await tempLeftovers(join(pair.rootB, '0'))).toEqual([]);
  });

  it('moves a qcow2 image that qemu-img compare finds identical', async () => {
    const src = join(pair.rootA, '0', 'img.qcow2');
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', src, '64M']);
    await qemuWrite(src, 'qcow2', [
      [0, MiB, 0x5a],
      [40 * MiB, 2 * MiB, 0x6b],
    ]);
    await transfer(pair.a, 'host-a', '0/img.qcow2', pair.b, '0/img.qcow2');
    const dst = join(pair.rootB, '0', 'img.qcow2');
    await runTool('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', src, dst]);
    await runTool('qemu-img', ['check', '-f', 'qcow2', dst]);
  });

  it('moves a VM directory with a qcow2 snapshot chain, keeping relative symlinks', async () => {
    const vm = join(pair.rootA, '0', '7');
    const snap = join(vm, 'disk.0.snap');
    await mkdir(snap, { recursive: true });
    await symlink('.', join(snap, 'disk.0.snap'));
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', join(snap, '0'), '32M']);
    await qemuWrite(join(snap, '0'), 'qcow2', [[0, MiB, 0x01]]);
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'disk.0.snap/0', '-F', 'qcow2', '1'], {
      cwd: snap,
    });
    await qemuWrite(join(snap, '1'), 'qcow2', [[4 * MiB, MiB, 0x02]]);
    await symlink('disk.0.snap/1', join(vm, 'disk.0'));
    await writeFile(join(vm, 'vm.xml'), '<VM><ID>7</ID></VM>\n', { mode: 0o640 });

    const { sent, got } = await transfer(pair.a, 'host-a', '0/7', pair.b, '0/7');
    expect(sent.kind).toBe(FileKind.FILE_KIND_DIRECTORY);
    expect(sent.entries).toBe(7); // ., disk.0, disk.0.snap, 0, 1, disk.0.snap/disk.0.snap, vm.xml
    expect(got.files).toBe(3);
    const dvm = join(pair.rootB, '0', '7');
    expect(await readlink(join(dvm, 'disk.0'))).toBe('disk.0.snap/1');
    expect(await readlink(join(dvm, 'disk.0.snap', 'disk.0.snap'))).toBe('.');
    expect((await lstat(join(dvm, 'disk.0'))).isSymbolicLink()).toBe(true);
    expect((await stat(join(dvm, 'vm.xml'))).mode & 0o777).toBe(0o640);
    const { stdout } = await runTool('qemu-img', [
      'info',
      '--output=json',
      '--backing-chain',
      join(dvm, 'disk.0'),
    ]);
    const chain = JSON.parse(stdout) as { filename: string; 'backing-filename'?: string }[];
    expect(chain).toHaveLength(2);
    expect(chain[0]?.['backing-filename']).toBe('disk.0.snap/0');
    expect(chain[1]?.filename.startsWith(dvm)).toBe(true);
    await runTool('qemu-img', ['compare', join(vm, 'disk.0'), join(dvm, 'disk.0')]);
  });

  it('replaces an existing file and an existing directory', async () => {
    const src = join(pair.rootA, '0', 'small.raw');
    await writeFile(src, Buffer.alloc(100_000, 7));
    await writeFile(join(pair.rootB, '0', 'small.raw'), 'old content');
    await transfer(pair.a, 'host-a', '0/small.raw', pair.b, '0/small.raw');
    expect(await sha256File(join(pair.rootB, '0', 'small.raw'))).toBe(await sha256File(src));

    await mkdir(join(pair.rootA, '0', 'dir1'));
    await writeFile(join(pair.rootA, '0', 'dir1', 'new'), 'new');
    await mkdir(join(pair.rootB, '0', 'dir1'));
    await writeFile(join(pair.rootB, '0', 'dir1', 'stale'), 'stale');
    await transfer(pair.a, 'host-a', '0/dir1', pair.b, '0/dir1');
    expect(await readdir(join(pair.rootB, '0', 'dir1'))).toEqual(['new']);
    expect(await tempLeftovers(join(pair.rootB, '0'))).toEqual([]);
  });

  it('sparse=false gives a fully allocated copy', async () => {
    const src = join(pair.rootA, '0', 'thin.raw');
    await writeFile(src, '');
    await truncate(src, 32 * MiB);
    await qemuWrite(src, 'raw', [[MiB, MiB, 0x77]]);
    await transfer(pair.a, 'host-a', '0/thin.raw', pair.b, '0/thick.raw', false);
    const dst = join(pair.rootB, '0', 'thick.raw');
    expect(await allocatedBytes(dst)).toBeGreaterThanOrEqual(32 * MiB);
    expect(await sha256File(dst)).toBe(await sha256File(src));
  });

  it('works in the authenticated plaintext mode, and a TLS-only sender refuses it', async () => {
    const pa = await startService('host-a', pair.tlsA, join(pair.work, 'pa'), { plaintextData: true });
    const pb = await startService('host-b', pair.tlsB, join(pair.work, 'pb'), { plaintextData: true });
    pair.extra.push(pa, pb);
    await mkdir(join(pair.work, 'pa', '0'), { recursive: true });
    await mkdir(join(pair.work, 'pb', '0'), { recursive: true });
    const src = join(pair.work, 'pa', '0', 'p.raw');
    await writeFile(src, '');
    await truncate(src, 16 * MiB);
    await qemuWrite(src, 'raw', [[2 * MiB, MiB, 0x19]]);
    await transfer(pa, 'host-a', '0/p.raw', pb, '0/p.raw');
    expect(await sha256File(join(pair.work, 'pb', '0', 'p.raw'))).toBe(await sha256File(src));
    // A plaintext-mode sender still serves TLS receivers.
    await transfer(pa, 'host-a', '0/p.raw', pair.b, '0/p-tls.raw');

    await writeFile(join(pair.rootA, '0', 'tls-only'), 'x');
    const sent = await pair.a.openSend({ path: oned('0/tls-only'), ttlSeconds: 0, receiverName: 'host-b' });
    await expect(
      pb.receive(
        {
          ticket: sent.ticket,
          dataAddress: sent.dataAddress,
          sourceName: 'host-a',
          destination: oned('0/t'),
          sparse: true,
        },
        new AbortController().signal,
      ),
    ).rejects.toThrow(/only over mutual TLS/);
  });
});
