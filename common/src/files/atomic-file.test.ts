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
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { syncTree, writeAtomically, writeFileAtomic } from './atomic-file.js';

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
      const descriptorPath = `/proc/${process.pid}/fd/${fh.fd}`;
      await writeAtomically(join(descriptorPath, 'file'), (temp) => writeFile(temp, 'via fd'));
    } finally {
      await fh.close();
    }
    expect(await readFile(join(dir, 'file'), 'utf8')).toBe('via fd');
  });

  it('writeFileAtomic writes small files readable by the probes', async () => {
    const marker = join(dir, '.monitor');
    await writeFileAtomic(marker, 'ssh\n', { mode: 0o644 });
    expect(await readFile(marker, 'utf8')).toBe('ssh\n');
    expect((await stat(marker)).mode & 0o7777).toBe(0o644);
  });

  it('writeFileAtomic gives the mode asked for whatever the umask, and replaces an existing file', async () => {
    const shim = join(dir, 'clone');
    await writeFile(shim, 'old', { mode: 0o600 });
    const umask = process.umask(0o077);
    try {
      await writeFileAtomic(shim, 'new', { mode: 0o755 });
    } finally {
      process.umask(umask);
    }
    expect(await readFile(shim, 'utf8')).toBe('new');
    expect((await stat(shim)).mode & 0o7777).toBe(0o755);
    expect(await readdir(dir)).toEqual(['clone']);
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

  it('skips a socket (the coordinator binds its socket under a temporary name)', async () => {
    const server = createServer();
    const socket = join(dir, 'coordinator.sock');
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      await expect(syncTree(socket)).resolves.toBeUndefined();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
