import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../../common/src/errors.js';
import { checkImportPath, importDirRules, isUnder } from './restricted-dirs.js';

const IMPLICIT = ['/var/lib/one/', '/etc/one/', '/home/oneadmin/'];

describe('SAFE_DIRS and RESTRICTED_DIRS', () => {
  it("adds the datastore's RESTRICTED_DIRS to the implicit ones, cleaned, relative ones dropped", () => {
    expect(
      importDirRules(IMPLICIT, {
        safeDirs: ['/var/tmp/', 'tmp', '/srv//up'],
        restrictedDirs: ['/', '/etc/one'],
      }),
    ).toEqual({
      safeDirs: ['/var/tmp', '/srv/up'],
      restrictedDirs: ['/var/lib/one', '/etc/one', '/home/oneadmin', '/'],
    });
  });

  it.each([
    ['/var/tmp/x', '/var/tmp', true],
    ['/var/tmp', '/var/tmp/', true],
    ['/var/tmpfoo/x', '/var/tmp', false],
    ['/anything', '/', true],
    ['/var', '/var/tmp', false],
  ])('%s under %s: %s', (path, dir, under) => {
    expect(isUnder(path, dir)).toBe(under);
  });

  // oned's defaults for a new datastore are SAFE_DIRS=/var/tmp and RESTRICTED_DIRS=/.
  const defaults = importDirRules(IMPLICIT, { safeDirs: ['/var/tmp'], restrictedDirs: ['/'] });
  const none = importDirRules(IMPLICIT, { safeDirs: [], restrictedDirs: [] });
  const safeHome = importDirRules(IMPLICIT, { safeDirs: ['/var/lib/one/uploads'], restrictedDirs: [] });

  it.each([
    ['oned defaults', defaults, '/var/tmp/a.qcow2', undefined],
    ['oned defaults', defaults, '/var/tmp/../etc/passwd', '/'],
    ['oned defaults', defaults, '/var/tmpfoo/a.qcow2', '/'],
    ['oned defaults', defaults, '/srv/a.qcow2', '/'],
    ['no lists', none, '/srv/a.qcow2', undefined],
    ['no lists', none, '/var/lib/one/datastores/0/42/disk.0', '/var/lib/one'],
    ['no lists', none, '/etc/one/oned.conf', '/etc/one'],
    ['no lists', none, '/home/oneadmin/.one/one_auth', '/home/oneadmin'],
    ['no lists', none, '/var/lib/one', '/var/lib/one'],
    ['a safe dir inside an implicit one', safeHome, '/var/lib/one/uploads/a.raw', undefined],
    ['a safe dir inside an implicit one', safeHome, '/var/lib/one/.one/one_auth', '/var/lib/one'],
  ])('%s: %s → %s', (_what, rules, path, restricting) => {
    if (restricting === undefined) {
      expect(() => checkImportPath(path, rules, 'image 7', 1)).not.toThrow();
      return;
    }
    let error: unknown;
    try {
      checkImportPath(path, rules, 'image 7', 1);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).reason).toBe('PATH_RESTRICTED');
    expect((error as StorageError).message).toBe(
      `image 7: not allowed to register ${path}: it lies under ${restricting}, one of the restricted directories (RESTRICTED_DIRS of datastore 1 and OpenNebula's implicit ones); list a directory holding it in SAFE_DIRS to allow it`,
    );
  });
});
