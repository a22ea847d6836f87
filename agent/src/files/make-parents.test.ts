import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeParents } from './make-parents.js';
import { DIRECTORY_MODE } from './modes.js';

let base: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'make-parents-'));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('makeParents', () => {
  it('makes the missing directories with DIRECTORY_MODE, and undo takes exactly those away', async () => {
    await mkdir(join(base, 'ds'));
    const made = await makeParents(join(base, 'ds', '0', '42'));
    expect((await stat(join(base, 'ds', '0', '42'))).mode & 0o777).toBe(DIRECTORY_MODE);
    await made.undo();
    expect(existsSync(join(base, 'ds', '0'))).toBe(false);
    expect(existsSync(join(base, 'ds'))).toBe(true);
  });

  it('leaves a directory that something else filled meanwhile', async () => {
    const made = await makeParents(join(base, '0', '42'));
    await writeFile(join(base, '0', '42', 'disk.1'), 'other call');
    await made.undo();
    expect(existsSync(join(base, '0', '42', 'disk.1'))).toBe(true);
  });

  it('undoes nothing when every directory was there', async () => {
    await mkdir(join(base, '0', '42'), { recursive: true });
    await (await makeParents(join(base, '0', '42'))).undo();
    expect(existsSync(join(base, '0', '42'))).toBe(true);
  });
});
