import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { cleanPath, diskIdOf, parseAbsolutePath, parseDiskIds, parseHostPath, parseId } from './host-path.js';

describe('parseHostPath (arg_host / arg_path)', () => {
  it.each([
    ['host01:/var/lib/one/datastores/0/42/disk.0', 'host01', '/var/lib/one/datastores/0/42/disk.0'],
    ['fe:/var/lib/one//datastores/1/abc', 'fe', '/var/lib/one/datastores/1/abc'],
    [
      'frontend.example.org:/var/lib/one/datastores/0/42/',
      'frontend.example.org',
      '/var/lib/one/datastores/0/42',
    ],
    ['h-2:/a//b///c//', 'h-2', '/a/b/c'],
  ])('%s → host %s, path %s', (arg, host, path) => {
    expect(parseHostPath(arg, 'destination')).toEqual({ host, path });
  });

  it.each([
    ['/var/lib/one/datastores/0/42'],
    ['host01'],
    [':/var/lib'],
    ['host01:relative/path'],
    ['host 01:/x'],
    ['ho;st:/x'],
    ['-host:/x'],
  ])('rejects %s naming the argument', (arg) => {
    expect(() => parseHostPath(arg, 'destination')).toThrowError(
      /argument destination .* is not host:\/absolute\/path/,
    );
    try {
      parseHostPath(arg, 'destination');
    } catch (err) {
      expect((err as StorageError).reason).toBe('BAD_HOST_PATH');
    }
  });

  it('reports a missing argument', () => {
    expect(() => parseHostPath(undefined, 'source')).toThrowError('missing argument source (host:path)');
  });
});

describe('other argument helpers', () => {
  it.each([
    ['/var/lib/one/datastores/0/42/disk.0', 0],
    ['/var/lib/one/datastores/0/42/disk.12', 12],
    ['/var/lib/one/datastores/0/42', undefined],
    ['/var/lib/one/datastores/0/42/disk.0.snap', undefined],
  ])('diskIdOf(%s) = %s', (path, id) => {
    expect(diskIdOf(path)).toBe(id);
  });

  it('cleanPath keeps the root', () => {
    expect(cleanPath('/')).toBe('/');
    expect(cleanPath('//x//')).toBe('/x');
  });

  it('parseAbsolutePath refuses relative paths', () => {
    expect(parseAbsolutePath('/var/lib/one//datastores/1/x', 'SOURCE')).toBe('/var/lib/one/datastores/1/x');
    expect(() => parseAbsolutePath('x/y', 'SOURCE')).toThrowError(
      'argument SOURCE "x/y" is not an absolute path',
    );
  });

  it('parseId accepts -1 and refuses words', () => {
    expect(parseId('-1', 'snap_id')).toBe(-1);
    expect(() => parseId('abc', 'vm_id')).toThrowError('argument vm_id "abc" is not a number');
  });
});

describe('disk ids argument', () => {
  it.each([
    ['0', [0]],
    ['0:1:3', [0, 1, 3]],
  ])('%s', (arg, ids) => expect(parseDiskIds(arg)).toEqual(ids));
  it.each(['', '0:', 'a', '0;1'])('refuses %j', (arg) => {
    expect(() => parseDiskIds(arg)).toThrow(/disk_ids/);
  });
});
