import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { MIB } from '../../../common/src/units.js';
import { imageInfo, resize } from './qemu-img.js';

const dir = mkdtempSync(join(tmpdir(), 'qemu-img-'));

async function create(name: string, format: string, sizeMb: number): Promise<string> {
  const path = join(dir, name);
  await runTool('qemu-img', ['create', '-q', '-f', format, path, `${sizeMb}M`]);
  return path;
}

describe('qemu-img wrapper (real qemu-img)', () => {
  it.each(['qcow2', 'raw'] as const)('reads %s info as JSON', async (format) => {
    const path = await create(`info.${format}`, format, 16);
    const info = await imageInfo(path, format);
    expect(info.format).toBe(format);
    expect(info.virtualSize).toBe(16 * MIB);
  });

  it('reads the backing file of an overlay', async () => {
    const base = await create('base.qcow2', 'qcow2', 8);
    const overlay = join(dir, 'overlay.qcow2');
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay]);
    expect((await imageInfo(overlay, 'qcow2')).backingFile).toBe(base);
  });

  it.each(['qcow2', 'raw'] as const)('grows a %s image', async (format) => {
    const path = await create(`grow.${format}`, format, 8);
    await resize(path, 24, { preallocate: false, format });
    expect((await imageInfo(path, format)).virtualSize).toBe(24 * MIB);
  });

  it('preallocates the new space of a raw image', async () => {
    const path = await create('prealloc.raw', 'raw', 1);
    await resize(path, 32, { preallocate: true, format: 'raw' });
    expect(statSync(path).blocks * 512).toBeGreaterThanOrEqual(31 * MIB);
  });

  it('reads a raw file holding a qcow2 header as raw: -f raw never parses a header', async () => {
    const path = join(dir, 'header.raw');
    await runTool('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-u',
      '-F',
      'raw',
      '-b',
      '/etc/hostname',
      path,
      '4M',
    ]);
    const info = await imageInfo(path, 'raw');
    expect([info.format, info.backingFile]).toEqual(['raw', undefined]);
    // A raw image's virtual size is its file size rounded up to whole sectors.
    expect(info.virtualSize).toBeGreaterThanOrEqual(statSync(path).size);
  });

  it('fails with a one-line TOOL_FAILED naming what it was doing', async () => {
    const err = await imageInfo(join(dir, 'absent.qcow2'), 'qcow2', { what: 'resize host01:/x' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).reason).toBe('TOOL_FAILED');
    expect((err as StorageError).message).toMatch(/^resize host01:\/x: qemu-img failed: /);
  });
});
