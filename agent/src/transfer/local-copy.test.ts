import { mkdir, readdir, readlink, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { copyLocal } from './local-copy.js';
import {
  allocatedBytes,
  qemuWrite,
  scratchDir,
  sha256File,
} from '../../../test/support/agent/transfer-support.js';
import { MIB as MiB } from '../../../common/src/units.js';

let work: string;

beforeAll(async () => {
  work = await scratchDir('copy');
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function sparseImage(path: string, size: number, dataAt: number, dataLen: number): Promise<void> {
  await writeFile(path, '');
  await truncate(path, size);
  await qemuWrite(path, 'raw', [[dataAt, dataLen, 0x2f]]);
}

describe('copyLocal', () => {
  it('reports progress from nothing to the source size, phase "copying"', async () => {
    const src = join(work, 'progress-src.raw');
    await sparseImage(src, 16 * MiB, 0, 4 * MiB);
    const seen: Array<{ done: number; total?: number; phase?: string }> = [];
    await copyLocal(src, join(work, 'progress-dst.raw'), { sparse: true, progress: (p) => seen.push(p) });
    expect(seen[0]).toEqual({ done: 0, total: 16 * MiB, phase: 'copying' });
    expect(seen.at(-1)).toEqual({ done: 16 * MiB, total: 16 * MiB });
    expect(seen.every((p) => p.done <= 16 * MiB)).toBe(true);
  });

  it('keeps holes (sparse) or fills them (not sparse)', async () => {
    const src = join(work, 'src.raw');
    await sparseImage(src, 128 * MiB, 8 * MiB, 2 * MiB);
    const { bytes } = await copyLocal(src, join(work, 'thin.raw'), { sparse: true });
    expect(bytes).toBe(128 * MiB);
    expect(await sha256File(join(work, 'thin.raw'))).toBe(await sha256File(src));
    expect(await allocatedBytes(join(work, 'thin.raw'))).toBeLessThanOrEqual(
      (await allocatedBytes(src)) + MiB,
    );
    await copyLocal(src, join(work, 'thick.raw'), { sparse: false });
    expect(await allocatedBytes(join(work, 'thick.raw'))).toBeGreaterThanOrEqual(128 * MiB);
  });

  it('copies a tree with symlinks as symlinks and replaces an existing directory', async () => {
    const src = join(work, 'vm');
    await mkdir(join(src, 'disk.0.snap'), { recursive: true });
    await symlink('.', join(src, 'disk.0.snap', 'disk.0.snap'));
    await sparseImage(join(src, 'disk.0.snap', '0'), 16 * MiB, 0, MiB);
    await symlink('disk.0.snap/0', join(src, 'disk.0'));
    const dst = join(work, 'vm-copy');
    await mkdir(dst);
    await writeFile(join(dst, 'stale'), 'stale');
    await copyLocal(src, dst, { sparse: true });
    expect((await readdir(dst)).sort()).toEqual(['disk.0', 'disk.0.snap']);
    expect(await readlink(join(dst, 'disk.0'))).toBe('disk.0.snap/0');
    expect(await readlink(join(dst, 'disk.0.snap', 'disk.0.snap'))).toBe('.');
    expect((await readdir(work)).filter((n) => n.includes('.tmp-') || n.includes('.old-'))).toEqual([]);
  });

  it('reports a missing source as NOT_FOUND and leaves nothing behind', async () => {
    await expect(copyLocal(join(work, 'absent'), join(work, 'x'), { sparse: true })).rejects.toMatchObject({
      reason: 'NOT_FOUND',
    });
    await expect(stat(join(work, 'x'))).rejects.toThrow(/ENOENT/);
  });

  describe('on a full filesystem', () => {
    let mnt: string | undefined;
    beforeAll(async () => {
      const dir = join(work, 'small');
      await mkdir(dir);
      mnt = await runTool('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dir]).then(
        () => dir,
        () => undefined,
      );
    });
    afterAll(async () => {
      if (mnt) await runTool('umount', [mnt]);
    });

    it('fails with NO_SPACE, keeps the old destination and leaves no temporary', async (ctx) => {
      if (!mnt) ctx.skip();
      const src = join(work, 'big.raw');
      await sparseImage(src, 64 * MiB, 0, 16 * MiB);
      const dst = join(mnt as string, 'big.raw');
      await writeFile(dst, 'previous');
      const err = await copyLocal(src, dst, { sparse: true }).catch((e: unknown) => e);
      expect(err).toMatchObject({ reason: 'NO_SPACE' });
      expect((err as Error).message).toContain(dst);
      expect(await readdir(mnt as string)).toEqual(['big.raw']);
      expect((await stat(dst)).size).toBe('previous'.length);
    });
  });
});
