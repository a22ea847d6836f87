import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { Roots } from './roots.js';
import { type StoredNames, storedNames } from './stored-name.js';

const LOC = '/var/lib/one/datastores';

/*
 * base/ds      root for /var/lib/one/datastores (system ds 0, image ds 1)
 * base/ds100   root for /var/lib/one/datastores/100 (another mount)
 * base/via     a symlink to base/ds: the configured path of a third location
 */
let base: string;
let names: StoredNames;
const p = (rel: string): string => join(base, rel);

beforeAll(() => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'stored-name-')));
  for (const d of ['ds/0/42/disk.0.snap', 'ds/1/img.snap', 'ds100/7', 'outside'])
    mkdirSync(p(d), { recursive: true });
  symlinkSync('.', p('ds/0/42/disk.0.snap/disk.0.snap'));
  writeFileSync(p('ds/1/img'), 'image');
  symlinkSync(p('ds'), p('via'));
  names = storedNames(
    new Roots('host01', [
      { location: LOC, path: p('ds') },
      { location: `${LOC}/100`, path: p('ds100') },
    ]),
  );
});

describe('nameFor: relative within a root, else oned path', () => {
  it.each([
    ['a disk link into its snap dir', 'ds/0/42/disk.0.snap/3', { dir: 'ds/0/42' }, 'disk.0.snap/3'],
    ['a disk link to a persistent image', 'ds/1/img.snap/2', { dir: 'ds/0/42' }, '../../1/img.snap/2'],
    ['.snap/0 to its image', 'ds/1/img', { dir: 'ds/1/img.snap' }, '../img'],
    [
      'a snap file through the self link',
      'ds/0/42/disk.0.snap/1',
      { dir: 'ds/0/42/disk.0.snap', selfLink: 'disk.0.snap' },
      'disk.0.snap/1',
    ],
    [
      'a clone base through the self link',
      'ds/1/img',
      { dir: 'ds/0/42/disk.0.snap', selfLink: 'disk.0.snap' },
      'disk.0.snap/../../../1/img',
    ],
    [
      'a target that does not exist yet',
      'ds/1/new.snap/4',
      { dir: 'ds/1/new.snap', selfLink: 'new.snap' },
      'new.snap/4',
    ],
    ['a target in another root', 'ds100/7/disk.0', { dir: 'ds/0/42' }, `${LOC}/100/7/disk.0`],
    ['from another root', 'ds/1/img', { dir: 'ds100/7' }, `${LOC}/1/img`],
  ])('%s', async (_what, target, from, expected) => {
    const anchor = { ...from, dir: p(from.dir) };
    expect(await names.nameFor(p(target), anchor)).toBe(expected);
  });

  it('a path reached through a symlinked directory is named by where it really is', async () => {
    expect(await names.nameFor(p('via/1/img'), { dir: p('ds/0/42') })).toBe('../../1/img');
  });

  it('a relative name resolves from the anchor and, through the self link, from the snap dir', async () => {
    const name = await names.nameFor(p('ds/1/img'), {
      dir: p('ds/0/42/disk.0.snap'),
      selfLink: 'disk.0.snap',
    });
    expect(realpathSync.native(`${p('ds/0/42')}/${name}`)).toBe(p('ds/1/img'));
    expect(realpathSync.native(`${p('ds/0/42/disk.0.snap')}/${name}`)).toBe(p('ds/1/img'));
  });

  it('refuses a target outside every root', async () => {
    const err = await names.nameFor(p('outside/x'), { dir: p('ds/0/42') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).reason).toBe('PATH_OUTSIDE_ROOTS');
  });
});

describe('localOf: what a stored name leads to on this host', () => {
  it.each([
    ['a relative name', 'disk.0.snap/3', 'ds/0/42', 'ds/0/42/disk.0.snap/3'],
    ["oned's path", `${LOC}/1/img.snap/2`, 'ds/0/42', 'ds/1/img.snap/2'],
    ["oned's path under the longer location", `${LOC}/100/7/disk.0`, 'ds/0/42', 'ds100/7/disk.0'],
    ['an absolute name outside the locations, unchanged', '/etc/passwd', 'ds/0/42', undefined],
  ])('%s', (_what, name, fromDir, expected) => {
    expect(names.localOf(name, p(fromDir))).toBe(expected === undefined ? name : p(expected));
  });
});
