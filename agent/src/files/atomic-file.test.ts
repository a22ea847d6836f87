import { execFileSync } from 'node:child_process';
import {
  mkdir,
  mkdtemp,
  open,
  readFile,
  readdir,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FOREIGN_STALE_MS, sweepDirectory } from '../transfer/stale-temps.js';
import { descriptorPath } from '../transfer/verified-open.js';
import { syncTree, tempNameBeside, writeAtomically, writeFileAtomic } from './atomic-file.js';
import { SMALL_FILE_MODE } from './modes.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'atomic-file-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeAtomically', () => {
  it('builds beside the destination and renames into place, leaving no temporary', async () => {
    const dest = join(dir, 'disk.0');
    await writeFile(dest, 'old');
    let seen = '';
    const result = await writeAtomically(dest, async (temp) => {
      seen = temp;
      await writeFile(temp, 'new');
      return 42;
    });
    expect(result).toBe(42);
    expect(seen).toMatch(/\/\.disk\.0\.tmp-[0-9a-f]{12}$/);
    expect(await readFile(dest, 'utf8')).toBe('new');
    expect(await readdir(dir)).toEqual(['disk.0']);
  });

  it('on a failure removes the temporary (a file or a half-built tree) and leaves the destination', async () => {
    const dest = join(dir, 'disk.0.snap');
    await mkdir(dest);
    await writeFile(join(dest, '0'), 'kept');
    const failed = writeAtomically(dest, async (temp) => {
      await mkdir(join(temp, 'sub'), { recursive: true });
      await writeFile(join(temp, 'sub', 'f'), 'partial');
      throw new Error('tool failed half-way');
    });
    await expect(failed).rejects.toThrow('tool failed half-way');
    expect(await readdir(dir)).toEqual(['disk.0.snap']);
    expect(await readFile(join(dest, '0'), 'utf8')).toBe('kept');
  });

  it('on a cancel (the tool killed by the signal) removes the temporary', async () => {
    const ac = new AbortController();
    const failed = writeAtomically(join(dir, 'image'), async (temp) => {
      await writeFile(temp, 'partial');
      ac.abort();
      ac.signal.throwIfAborted();
    });
    await expect(failed).rejects.toThrow();
    expect(await readdir(dir)).toEqual([]);
  });

  it('replaces a directory by a directory, and a symlink by a symlink (relink)', async () => {
    const snap = join(dir, 'disk.0.snap');
    await mkdir(snap);
    await writeFile(join(snap, 'old'), 'x');
    await writeAtomically(snap, async (temp) => {
      await mkdir(temp);
      await writeFile(join(temp, '0'), 'y');
      await symlink('.', join(temp, 'disk.0.snap'));
    });
    expect((await readdir(snap)).sort()).toEqual(['0', 'disk.0.snap']);
    const disk = join(dir, 'disk.0');
    await symlink('nowhere-yet', disk);
    // A dangling link is written and synced without being followed.
    await writeAtomically(disk, (temp) => symlink('disk.0.snap/1', temp));
    expect(await readlink(disk)).toBe('disk.0.snap/1');
    expect((await readdir(dir)).sort()).toEqual(['disk.0', 'disk.0.snap']);
  });

  it('works through a held directory descriptor path (the data path confines its renames so)', async () => {
    const fh = await open(dir, 'r');
    try {
      await writeAtomically(join(descriptorPath(fh), 'file'), (temp) => writeFile(temp, 'via fd'));
    } finally {
      await fh.close();
    }
    expect(await readFile(join(dir, 'file'), 'utf8')).toBe('via fd');
  });

  it('writeFileAtomic writes small files readable by the probes', async () => {
    const marker = join(dir, '.monitor');
    await writeFileAtomic(marker, 'ssh\n');
    expect(await readFile(marker, 'utf8')).toBe('ssh\n');
    expect((await stat(marker)).mode & 0o7777).toBe(SMALL_FILE_MODE);
  });
});

describe('temporary names', () => {
  it('are ones the stale-temps sweep knows: another work’s temporary, removed once a day old', async () => {
    const name = tempNameBeside(join(dir, 'disk.0')).slice(dir.length + 1);
    expect(name).toMatch(/^\.disk\.0\.tmp-[0-9a-f]{12}$/);
    await writeFile(join(dir, name), 'left by a crash');
    const opts = { agent: 'host-a', active: new Set<string>() };
    expect(await sweepDirectory(dir, opts)).toEqual([]);
    expect(await sweepDirectory(dir, { ...opts, now: Date.now() + 2 * FOREIGN_STALE_MS })).toEqual([name]);
  });
});

describe('syncTree', () => {
  it('syncs files and directories of a tree, skipping symlinks and never blocking on a FIFO', async () => {
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'sub'), { recursive: true });
    await writeFile(join(tree, 'sub', 'f'), 'data');
    await symlink('/etc/hostname', join(tree, 'outside'));
    execFileSync('mkfifo', [join(tree, 'fifo')]);
    await expect(syncTree(tree)).resolves.toBeUndefined();
    await expect(syncTree(join(tree, 'outside'))).resolves.toBeUndefined();
  });
});
