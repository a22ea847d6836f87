import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rootHealth } from './root-health.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'root-health-'));
  await mkdir(join(dir, 'ds'));
  await symlink(join(dir, 'ds'), join(dir, 'link'));
  await writeFile(join(dir, 'file'), 'not a directory');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('rootHealth', () => {
  it('a directory: ok, its real path, its filesystem size and owner', async () => {
    const r = await rootHealth({ location: '/var/lib/one/datastores', path: join(dir, 'link') });
    expect(r).toMatchObject({
      location: '/var/lib/one/datastores',
      root: join(dir, 'ds'),
      ok: true,
      detail: '',
    });
    expect(r.totalBytes).toBeGreaterThan(0);
    expect(r.freeBytes).toBeGreaterThan(0);
    expect(r.freeBytes).toBeLessThanOrEqual(r.totalBytes);
    expect(r.ownerUid).toBe(process.getuid?.());
  });

  it.each([
    ['missing', 'nope', /nope is missing \(ENOENT\)$/],
    ['a file', 'file', /file is not a directory$/],
  ])('%s: not ok, saying why, no sizes', async (_what, name, detail) => {
    const r = await rootHealth({ location: '/var/lib/one/datastores', path: join(dir, name) });
    expect([r.ok, r.totalBytes, r.freeBytes]).toEqual([false, 0, 0]);
    expect(r.detail).toMatch(detail);
  });
});
