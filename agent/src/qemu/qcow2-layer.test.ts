import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { readQcow2Layer } from './qcow2-header.js';

/**
 * readQcow2Layer stands in for `qemu-img info` on every qcow2 layer of a chain: it must say what
 * qemu-img says, field by field, for every kind of image qemu-img makes.
 */
const dir = mkdtempSync(join(tmpdir(), 'qcow2-layer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function qemuImg(...args: string[]): Promise<string> {
  return (await runTool('qemu-img', args)).stdout;
}

async function infoOf(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await qemuImg('info', '-f', 'qcow2', '-U', '--output=json', file)) as Record<
    string,
    unknown
  >;
}

async function sameAsQemuImg(file: string): Promise<void> {
  const ours = await readQcow2Layer(file, 'test');
  const info = await infoOf(file);
  expect(ours.virtualSize).toBe(info['virtual-size']);
  expect(ours.actualSize).toBe(info['actual-size']);
  expect(ours.name).toBe(info['backing-filename']);
  expect(ours.format).toBe(info['backing-filename-format']);
}

describe('readQcow2Layer: what qemu-img info says, from the header', () => {
  it('agrees on standalone, overlay, v2, long-named, relinked and data-holding images', async () => {
    const base = join(dir, 'base.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', base, '3G');
    await sameAsQemuImg(base);
    const over = join(dir, 'over.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'base.qcow2', over);
    await sameAsQemuImg(over);
    const abs = join(dir, 'abs.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, abs);
    await sameAsQemuImg(abs);
    const v2 = join(dir, 'v2.qcow2');
    await qemuImg(
      'create',
      '-q',
      '-f',
      'qcow2',
      '-o',
      'compat=0.10',
      '-F',
      'raw',
      '-b',
      'x.raw',
      '-u',
      v2,
      '1G',
    );
    await sameAsQemuImg(v2);
    const long = join(dir, 'long.qcow2');
    const longName = `${'a/'.repeat(300)}disk with spaces, ünïcode; $x`;
    await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', longName, '-u', long, '1M');
    await sameAsQemuImg(long);
    // A rebase rewrites the header in place (shorter name, then none).
    await qemuImg('rebase', '-u', '-f', 'qcow2', '-F', 'qcow2', '-b', 'b', long);
    await sameAsQemuImg(long);
    await qemuImg('rebase', '-u', '-f', 'qcow2', '-b', '', long);
    await sameAsQemuImg(long);
    // Data written: actual size grows with the allocated clusters.
    await qemuImg('create', '-q', '-f', 'qcow2', join(dir, 'data.qcow2'), '64M');
    await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -P 7 0 8M', join(dir, 'data.qcow2')]);
    await sameAsQemuImg(join(dir, 'data.qcow2'));
  });

  it('refuses what qemu would not open: unknown incompatible features, a name outside the header', async () => {
    const f = join(dir, 'bits.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', f, '1M');
    const bytes = readFileSync(f);
    bytes.writeBigUInt64BE(1n << 40n, 72);
    writeFileSync(f, bytes);
    await expect(infoOf(f)).rejects.toThrow();
    const err = await readQcow2Layer(f, 'test bits').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).message).toMatch(/^test bits: .*unknown incompatible features/);

    const g = join(dir, 'name.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'base.qcow2', '-u', g, '1M');
    const b2 = readFileSync(g);
    b2.writeBigUInt64BE(BigInt(b2.length + 4096), 8);
    writeFileSync(g, b2);
    const err2 = await readQcow2Layer(g, 'test name').catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(StorageError);
    expect((err2 as StorageError).message).toMatch(/^test name: .*impossible backing file name/);
  });
});
