import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Reasons, StorageError, asStorageError, oneLine, reasonForErrno } from './errors.js';

describe('error catalogue', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  it.each(Object.keys(Reasons))('reason %s is documented in docs/errors.md', (reason) => {
    expect(doc).toContain(`| \`${reason}\` |`);
  });
});

describe('error mapping', () => {
  it.each([
    ['ENOSPC', 'NO_SPACE', 'no space left on the destination filesystem'],
    ['EDQUOT', 'NO_SPACE', 'no space left on the destination filesystem'],
    ['ENOENT', 'NOT_FOUND', 'no such file or directory'],
    ['EEXIST', 'ALREADY_EXISTS', 'already exists'],
    ['EROFS', 'INTERNAL', 'read-only filesystem'],
    // Found by test/fuzz: ImageInfo of a path that is a directory was INTERNAL (EISDIR).
    ['EISDIR', 'INVALID_ARGUMENT', 'is a directory, not a file'],
    ['ENOTDIR', 'NOT_FOUND', 'a part of the path is a file, not a directory'],
    ['ELOOP', 'INVALID_ARGUMENT', 'too many levels of symbolic links'],
    ['ENAMETOOLONG', 'INVALID_ARGUMENT', 'a name in the path is too long'],
    // Found by test/fuzz: a received manifest declaring a file past ext4's 16 TiB was INTERNAL.
    ['EFBIG', 'NO_SPACE', 'file too large for the destination filesystem'],
  ])('%s → %s', (code, reason, why) => {
    const err = Object.assign(new Error('x'), { code });
    expect(reasonForErrno(err)).toEqual({ reason, why });
  });

  it('asStorageError names what and where and keeps StorageErrors', () => {
    const e = asStorageError(Object.assign(new Error('boom'), { code: 'ENOSPC' }), 'write', 'host01:/x');
    expect(e.message).toBe('write host01:/x: no space left on the destination filesystem');
    expect(e.reason).toBe('NO_SPACE');
    const original = new StorageError('LOCKED', 'busy');
    expect(asStorageError(original, 'a', 'b')).toBe(original);
  });

  it('messages are always one line', () => {
    expect(new StorageError('INTERNAL', 'a\nb\r\n  c').message).toBe('a b c');
    expect(oneLine('  x\n\ny ')).toBe('x y');
  });
});
