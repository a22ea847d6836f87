import { mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempNameBeside } from '../../../common/src/files/temp-name.js';
import { FOREIGN_STALE_MS, receiveTempName, sweepDirectory, sweepRoot } from './stale-temps.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stale-temps-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const AGENT = 'host-b';
const old = new Date(Date.now() - 2 * FOREIGN_STALE_MS);

async function plant(name: string, opts: { old?: boolean; tree?: boolean } = {}): Promise<void> {
  const path = join(dir, name);
  if (opts.tree) {
    await mkdir(join(path, 'sub'), { recursive: true });
    await writeFile(join(path, 'sub', 'f'), 'x');
    // The directories are old; only the file deep inside was written recently.
    if (opts.old) for (const p of [path, join(path, 'sub')]) await utimes(p, old, old);
    return;
  }
  await writeFile(path, 'x');
  if (opts.old) await utimes(path, old, old);
}

describe('stale temporaries', () => {
  it('receive temporaries carry the agent name', () => {
    expect(receiveTempName('disk.0', AGENT)).toMatch(/^\.disk\.0\.tmp-host-b-[0-9a-f]{12}$/);
  });

  it.each([
    ['ours, not in use', '.disk.0.tmp-host-b-0123456789ab', {}, true],
    ['another agent whose name starts like ours', '.disk.0.tmp-host-b-2-0123456789ab', {}, false],
    ['another agent, fresh', '.disk.0.tmp-host-c-0123456789ab', {}, false],
    ['another agent, unchanged for two days', '.disk.0.tmp-host-c-0123456789ab', { old: true }, true],
    ['an older version, fresh', '.disk.0.tmp-0123456789ab', {}, false],
    ['an older version, unchanged for two days', '.disk.0.tmp-0123456789ab', { old: true }, true],
    ['a tree with a fresh file deep inside', '.vm.tmp-0123456789ab', { old: true, tree: true }, false],
    ['an aside of a replaced directory', '.disk.0.old-0123456789ab', { old: true }, false],
    ['not a temporary', 'disk.0', { old: true }, false],
  ])('%s: swept %s', async (_what, name, opts, swept) => {
    await plant(name, opts);
    expect(await sweepDirectory(dir, { agent: AGENT, active: new Set() })).toEqual(swept ? [name] : []);
  });

  it('never sweeps a temporary in use, and with a base only those of that name', async () => {
    const inUse = '.disk.0.tmp-host-b-0123456789ab';
    await plant(inUse);
    await plant('.disk.1.tmp-host-b-0123456789ab');
    expect(await sweepDirectory(dir, { agent: AGENT, active: new Set([inUse]) }, 'disk.0')).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual([inUse, '.disk.1.tmp-host-b-0123456789ab']);
  });

  it('sweeps two levels below a root, never through a symlink', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'stale-temps-outside-'));
    try {
      await mkdir(join(dir, '0', '42'), { recursive: true });
      await writeFile(join(dir, '0', '42', '.disk.0.tmp-host-b-0123456789ab'), 'x');
      await writeFile(join(outside, '.disk.0.tmp-host-b-0123456789ab'), 'x');
      await symlink(outside, join(dir, '0', 'elsewhere'));
      const removed = await sweepRoot(dir, { agent: AGENT, active: new Set() });
      expect(removed).toEqual([join(dir, '0', '42', '.disk.0.tmp-host-b-0123456789ab')]);
      expect(await readdir(outside)).toEqual(['.disk.0.tmp-host-b-0123456789ab']);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
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
