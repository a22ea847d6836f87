import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { StorageError, type Reason } from '../../../common/src/errors.js';
import { MAX_PATH_LENGTH, Roots, isInside } from './roots.js';

const LOC = '/var/lib/one/datastores';

/*
 * base/ds                  root for /var/lib/one/datastores
 * base/ds100               root for /var/lib/one/datastores/100 (a longer, nested location)
 * base/real + base/linked  root /srv/linked whose configured path is itself a symlink
 * base/outside/secret      what symlink escapes try to reach
 */
let base: string;
let roots: Roots;

beforeAll(() => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'roots-')));
  for (const d of ['ds/0/42', 'ds/1', 'ds100', 'real', 'outside', 'ds2'])
    mkdirSync(join(base, d), { recursive: true });
  writeFileSync(join(base, 'ds/0/42/disk.0'), 'x');
  writeFileSync(join(base, 'outside/secret'), 's');
  symlinkSync(join(base, 'outside'), join(base, 'ds/escape')); // depth 1
  symlinkSync(join(base, 'outside'), join(base, 'ds/0/escape')); // depth 2
  symlinkSync('/etc', join(base, 'ds/0/42/etc')); // depth 3, absolute target
  symlinkSync('../../../outside', join(base, 'ds/0/42/rel')); // relative target
  symlinkSync(join(base, 'outside/secret'), join(base, 'ds/0/42/disk.1')); // final component
  symlinkSync(join(base, 'ds/1'), join(base, 'ds/0/inside')); // stays inside
  symlinkSync(join(base, 'ds100'), join(base, 'ds/0/other-root')); // into another root
  symlinkSync(join(base, 'real'), join(base, 'linked'));
  roots = new Roots('host01', [
    { location: LOC, path: join(base, 'ds') },
    { location: `${LOC}/100`, path: `${join(base, 'ds100')}/` },
    { location: '/srv/linked', path: join(base, 'linked') },
  ]);
});

async function reasonOf(p: Promise<unknown>): Promise<{ reason: Reason; message: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError);
    return { reason: (err as StorageError).reason, message: (err as StorageError).message };
  }
  throw new Error('expected a refusal');
}

describe('Roots.resolve maps oned paths', () => {
  const cases: Array<[string, string, string]> = [
    ['the location itself', LOC, 'ds'],
    ['a file', `${LOC}/0/42/disk.0`, 'ds/0/42/disk.0'],
    ['a path that does not exist yet', `${LOC}/0/43/disk.0`, 'ds/0/43/disk.0'],
    ['deep missing ancestors', `${LOC}/7/8/9/disk.0`, 'ds/7/8/9/disk.0'],
    ['double slashes (oned sends them)', '/var/lib/one//datastores//0/42/disk.0', 'ds/0/42/disk.0'],
    ['a trailing slash', `${LOC}/0/42/`, 'ds/0/42'],
    ['the longest location wins', `${LOC}/100/5/disk.0`, 'ds100/5/disk.0'],
    ['exactly the nested location', `${LOC}/100`, 'ds100'],
    ['"100x" is not under "100"', `${LOC}/100x/disk.0`, 'ds/100x/disk.0'],
    ['a symlinked directory that stays inside', `${LOC}/0/inside/f`, 'ds/1/f'],
    ['a symlink into another root', `${LOC}/0/other-root/f`, 'ds100/f'],
    ['a final symlink is not followed', `${LOC}/0/42/disk.1`, 'ds/0/42/disk.1'],
    ['a final symlink to /etc is returned as the link', `${LOC}/0/42/etc`, 'ds/0/42/etc'],
    ['a root configured through a symlink', '/srv/linked/a/b', 'real/a/b'],
    ['allowed punctuation', `${LOC}/0/a_b-c.d@e+f=g,h:i~j`, 'ds/0/a_b-c.d@e+f=g,h:i~j'],
    ['names made of dots', `${LOC}/0/...`, 'ds/0/...'],
  ];
  it.each(cases)('%s', async (_title, onedPath, local) => {
    expect(await roots.resolve(onedPath, 'path')).toBe(join(base, local));
  });
});

describe('Roots.resolve refuses', () => {
  const cases: Array<[string, string, Reason, string]> = [
    ['a relative path', 'var/lib/one/datastores/0', 'UNSAFE_PATH', 'must be an absolute path'],
    ['an empty path', '', 'UNSAFE_PATH', 'must be an absolute path'],
    ['a ".." component', `${LOC}/0/../../../etc`, 'UNSAFE_PATH', '"." or ".."'],
    ['a trailing ".."', `${LOC}/0/..`, 'UNSAFE_PATH', '"." or ".."'],
    ['a "." component', `${LOC}/./0`, 'UNSAFE_PATH', '"." or ".."'],
    ['a NUL', `${LOC}/0\0/x`, 'UNSAFE_PATH', 'NUL'],
    ['";rm -rf"', `${LOC}/0/x;rm -rf /`, 'UNSAFE_PATH', 'contains ";"'],
    ['a space', `${LOC}/0/a b`, 'UNSAFE_PATH', 'contains " "'],
    ['a newline', `${LOC}/0/a\nb`, 'UNSAFE_PATH', 'contains "\\n"'],
    ['a dollar', `${LOC}/0/$HOME`, 'UNSAFE_PATH', 'contains "$"'],
    ['a backtick', `${LOC}/0/\`id\``, 'UNSAFE_PATH', 'contains "`"'],
    ['a pipe', `${LOC}/0/a|b`, 'UNSAFE_PATH', 'contains "|"'],
    ['an ampersand', `${LOC}/0/a&b`, 'UNSAFE_PATH', 'contains "&"'],
    ['a glob star', `${LOC}/0/*`, 'UNSAFE_PATH', 'contains "*"'],
    ['a question mark', `${LOC}/0/a?`, 'UNSAFE_PATH', 'contains "?"'],
    ['quotes', `${LOC}/0/'a"`, 'UNSAFE_PATH', 'contains "\'"'],
    ['non-ASCII', `${LOC}/0/é`, 'UNSAFE_PATH', 'contains "é"'],
    [
      'an over-long path',
      `${LOC}/${'a'.repeat(MAX_PATH_LENGTH)}`,
      'UNSAFE_PATH',
      `longer than ${MAX_PATH_LENGTH}`,
    ],
    ['a path outside every location', '/etc/passwd', 'PATH_OUTSIDE_ROOTS', 'outside the datastore roots'],
    ['a sibling sharing a prefix', '/var/lib/one/datastores2/0', 'PATH_OUTSIDE_ROOTS', 'this agent serves'],
    ['the parent of a location', '/var/lib/one', 'PATH_OUTSIDE_ROOTS', 'outside the datastore roots'],
    ['a symlink escape at depth 1', `${LOC}/escape/secret`, 'PATH_OUTSIDE_ROOTS', 'leads through a symlink'],
    [
      'a symlink escape at depth 2',
      `${LOC}/0/escape/secret`,
      'PATH_OUTSIDE_ROOTS',
      'leads through a symlink',
    ],
    [
      'a symlink escape to /etc at depth 3',
      `${LOC}/0/42/etc/passwd`,
      'PATH_OUTSIDE_ROOTS',
      'leads through a symlink',
    ],
    [
      'an escape below a missing part',
      `${LOC}/0/escape/new/dir`,
      'PATH_OUTSIDE_ROOTS',
      'leads through a symlink',
    ],
    ['a relative symlink escape', `${LOC}/0/42/rel/secret`, 'PATH_OUTSIDE_ROOTS', 'leads through a symlink'],
  ];
  it.each(cases)('%s', async (_title, onedPath, reason, why) => {
    const err = await reasonOf(roots.resolve(onedPath, 'path'));
    expect(err.reason).toBe(reason);
    expect(err.message).toContain(why);
    expect(err.message).toMatch(/^path host01:/); // names the field and the host
    expect(err.message).not.toMatch(/\n/);
  });

  it('names the path and lists the locations when nothing matches', async () => {
    const err = await reasonOf(roots.resolve('/var/lib/one/datastores2/0', 'source'));
    expect(err.message).toBe(
      `source host01:/var/lib/one/datastores2/0: outside the datastore roots; this agent serves ${LOC}, ${LOC}/100, /srv/linked`,
    );
  });

  it('reports a missing root directory as NOT_FOUND', async () => {
    const missing = new Roots('host01', [{ location: LOC, path: join(base, 'nope') }]);
    const err = await reasonOf(missing.resolve(`${LOC}/0`, 'path'));
    expect(err.reason).toBe('NOT_FOUND');
    expect(err.message).toContain('does not exist on this host');
  });
});

describe('Roots.resolveTarget follows the final symlink only within the roots', () => {
  it('refuses a final symlink that leads outside', async () => {
    expect((await reasonOf(roots.resolveTarget(`${LOC}/0/42/disk.1`, 'path'))).reason).toBe(
      'PATH_OUTSIDE_ROOTS',
    );
    expect((await reasonOf(roots.resolveTarget(`${LOC}/0/42/etc`, 'path'))).reason).toBe(
      'PATH_OUTSIDE_ROOTS',
    );
  });
  it('follows a final symlink that stays inside', async () => {
    expect(await roots.resolveTarget(`${LOC}/0/inside`, 'path')).toBe(join(base, 'ds/1'));
  });
  it('returns a missing path as resolve does', async () => {
    expect(await roots.resolveTarget(`${LOC}/0/nothing`, 'path')).toBe(join(base, 'ds/0/nothing'));
  });
});

describe('Roots helpers', () => {
  it('normalize collapses slashes like arg_path', () => {
    expect(roots.normalize('//var//lib/one/datastores/0/', 'path')).toBe(`${LOC}/0`);
  });
  it('isRoot recognises the roots only', async () => {
    expect(await roots.isRoot(join(base, 'ds'))).toBe(true);
    expect(await roots.isRoot(join(base, 'real'))).toBe(true);
    expect(await roots.isRoot(join(base, 'ds/0'))).toBe(false);
  });
  it.each([
    ['/a/b', '/a', true],
    ['/a', '/a', true],
    ['/ab', '/a', false],
    ['/a', '/a/b', false],
    ['/x', '/', true],
  ])('isInside(%s, %s) = %s', (child, parent, expected) => {
    expect(isInside(child, parent)).toBe(expected);
  });
});
