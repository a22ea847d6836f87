import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readSnapDir } from './snap-dir.js';

let dir: string;
let outside: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snap-dir-'));
  outside = join(dir, 'secret');
  await writeFile(outside, 'root:x:0:0:the-secret-line\n');
  await writeFile(join(dir, '0'), '');
  await writeFile(join(dir, '1'), '');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('readSnapDir .current pointers', () => {
  it('follows a pointer file to the sibling it names', async () => {
    await writeFile(join(dir, '0.current'), '/var/lib/one/datastores/0/7/disk.0.snap/1\n');
    const snap = await readSnapDir(dir, 'test');
    expect(snap.currents.get(0)).toBe(1);
  });

  it('refuses a pointer that is a symlink, without reading or quoting what it leads to', async () => {
    await symlink(outside, join(dir, '0.current'));
    const err = await readSnapDir(dir, 'test').catch((e: unknown) => e as Error);
    expect(err).toMatchObject({ reason: 'BAD_LAYOUT' });
    expect((err as Error).message).toMatch(/is a symlink/);
    expect((err as Error).message).not.toContain('the-secret-line');
  });

  it('refuses a pointer that is not a small regular file', async () => {
    await writeFile(join(dir, '0.current'), 'x'.repeat(10_000));
    await expect(readSnapDir(dir, 'test')).rejects.toMatchObject({ reason: 'BAD_LAYOUT' });
  });

  it('quotes only a short last name of a pointer that names no snapshot file', async () => {
    await writeFile(join(dir, '0.current'), `/etc/${'y'.repeat(200)}\n`);
    const err = await readSnapDir(dir, 'test').catch((e: unknown) => e as Error);
    expect(err).toMatchObject({ reason: 'BAD_LAYOUT' });
    expect((err as Error).message).not.toContain('/etc/');
    expect((err as Error).message).toContain(`"${'y'.repeat(64)}"`);
  });
});
