import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDirectory, makeNewDirectory } from './make-directory.js';
import { AGENT_UMASK, DIRECTORY_MODE } from './modes.js';

let base: string;
let previousUmask: number;
const modeOf = (p: string): number => statSync(p).mode & 0o7777;

beforeAll(() => {
  // As the agent runs (agent/src/main.ts): mkdir's own mode alone would give 0750.
  previousUmask = process.umask(AGENT_UMASK);
  base = mkdtempSync(join(tmpdir(), 'make-directory-'));
});

afterAll(() => {
  process.umask(previousUmask);
  rmSync(base, { recursive: true, force: true });
});

describe('makeDirectory under the agent umask', () => {
  it('creates every missing level at DIRECTORY_MODE and returns them, outermost first', async () => {
    const leaf = join(base, 'a', 'b', 'c');
    expect(await makeDirectory(leaf)).toEqual([join(base, 'a'), join(base, 'a', 'b'), leaf]);
    for (const d of ['a', 'a/b', 'a/b/c']) expect(modeOf(join(base, d))).toBe(DIRECTORY_MODE);
  });

  it('creates nothing and changes no mode when the directory exists', async () => {
    const mine = join(base, 'private');
    await makeDirectory(mine);
    await chmod(mine, 0o700);
    expect(await makeDirectory(mine)).toEqual([]);
    expect(modeOf(mine)).toBe(0o700);
  });

  it('makeNewDirectory: DIRECTORY_MODE, and EEXIST for one that is there', async () => {
    const dir = join(base, 'new');
    await makeNewDirectory(dir);
    expect(modeOf(dir)).toBe(DIRECTORY_MODE);
    await expect(makeNewDirectory(dir)).rejects.toMatchObject({ code: 'EEXIST' });
  });
});
