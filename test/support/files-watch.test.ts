// The watch helpers of test/support/files.ts leave no fs.watch watcher open, however their wait
// ends: found, the watched directory gone (an error), aborted by a time bound, or given up.
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from './agent/agent-fixture.js';
import { appearsWhile, entryAppears, fileShows, firstChange, pathAppears } from './files.js';
import { openWatchers } from './watchers.js';

let base = '';
let n = 0;
/** A new empty directory for one test. */
const fresh = (): string => {
  const dir = join(base, String(n++));
  mkdirSync(dir);
  return dir;
};
/** A signal already past its bound, as a test's timeout would leave it. */
const timedOut = (): AbortSignal => AbortSignal.abort(new Error('timed out'));

beforeAll(async () => {
  base = await makeTempDir('files-watch-');
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});
afterEach(async () => {
  expect(await openWatchers()).toBe(0);
});

describe('entryAppears', () => {
  it('finds an entry already there, or one made while it waits, and closes its watch', async () => {
    const dir = fresh();
    writeFileSync(join(dir, 'a'), '');
    expect(await entryAppears(dir, (x) => x === 'a').appeared).toBe('a');
    const later = entryAppears(dir, (x) => x === 'b');
    expect(await openWatchers()).toBe(1);
    writeFileSync(join(dir, 'b'), '');
    expect(await later.appeared).toBe('b');
  });

  it('rejects and closes its watch when the directory goes, when its signal aborts, and on close()', async () => {
    const gone = fresh();
    const waiting = entryAppears(gone, () => false);
    rmdirSync(gone);
    await expect(waiting.appeared).rejects.toMatchObject({ code: 'ENOENT' });
    const ac = new AbortController();
    const bounded = entryAppears(fresh(), () => false, ac.signal);
    ac.abort(new Error('timed out'));
    await expect(bounded.appeared).rejects.toThrow('timed out');
    await expect(entryAppears(fresh(), () => false, timedOut()).appeared).rejects.toThrow('timed out');
    await expect(entryAppears(join(base, 'missing'), () => true).appeared).rejects.toMatchObject({
      code: 'ENOENT',
    });
    entryAppears(fresh(), () => false).close();
  });
});

describe('pathAppears and appearsWhile', () => {
  it('pathAppears waits for each missing component and closes every watch, found or aborted', async () => {
    const dir = fresh();
    const appears = pathAppears(join(dir, 'x', 'y'));
    mkdirSync(join(dir, 'x', 'y'), { recursive: true });
    await appears;
    const ac = new AbortController();
    const aborted = pathAppears(join(dir, 'p', 'q'), ac.signal);
    mkdirSync(join(dir, 'p'));
    ac.abort(new Error('timed out'));
    await expect(aborted).rejects.toThrow('timed out');
  });

  it('appearsWhile is true when the path comes first, false when the call settles first; no watch stays', async () => {
    const dir = fresh();
    let settle = (): void => {};
    const running = new Promise<void>((resolve) => (settle = resolve));
    const seen = appearsWhile(join(dir, 'backup', 'disk.0.0'), running);
    mkdirSync(join(dir, 'backup'));
    writeFileSync(join(dir, 'backup', 'disk.0.0'), '');
    expect(await seen).toBe(true);
    settle();
    expect(await appearsWhile(join(dir, 'never', 'there'), Promise.resolve())).toBe(false);
    expect(await appearsWhile(join(dir, 'never'), Promise.reject(new Error('call failed')))).toBe(false);
  });
});

describe('firstChange and fileShows', () => {
  it('resolve at the change they wait for and close their watch', async () => {
    const file = join(fresh(), 'log');
    writeFileSync(file, '');
    const changed = firstChange(file);
    writeFileSync(file, 'x');
    await changed;
    let lines = 0;
    const shows = fileShows(file, () => lines >= 2);
    lines = 2;
    writeFileSync(file, 'x\ny\n');
    await shows;
    await fileShows(file, () => true);
  });

  it('reject and close their watch when the signal aborts; a missing file opens none', async () => {
    const file = join(fresh(), 'log');
    writeFileSync(file, '');
    const ac = new AbortController();
    const changed = firstChange(file, ac.signal);
    const shows = fileShows(file, () => false, ac.signal);
    expect(await openWatchers()).toBe(2);
    ac.abort(new Error('timed out'));
    await expect(changed).rejects.toThrow('timed out');
    await expect(shows).rejects.toThrow('timed out');
    await expect(fileShows(file, () => false, timedOut())).rejects.toThrow('timed out');
    await expect(firstChange(join(base, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
