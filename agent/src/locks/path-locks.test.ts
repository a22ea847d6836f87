import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { PathLocks, domainLockKey } from './path-locks.js';

const SHORT_WAIT_MS = 50;

async function lockedError(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (err) {
    return err as StorageError;
  }
  throw new Error('expected LOCKED');
}

describe('PathLocks', () => {
  const conflicts: Array<[string, string[], string[], boolean]> = [
    ['the same path', ['/ds/0/42'], ['/ds/0/42'], true],
    ['a file below a held directory', ['/ds/0/42'], ['/ds/0/42/disk.0'], true],
    ['a directory above a held file', ['/ds/0/42/disk.0'], ['/ds/0/42'], true],
    ['siblings', ['/ds/0/42/disk.0'], ['/ds/0/42/disk.1'], false],
    ['a shared name prefix', ['/ds/0/42'], ['/ds/0/420'], false],
    ['one of several paths', ['/a', '/b'], ['/c', '/b/x'], true],
    [
      'the same domain, two disks',
      ['/ds/0/42/disk.0', domainLockKey('one-42')],
      ['/ds/0/42/disk.1', domainLockKey('one-42')],
      true,
    ],
    ['two domains', [domainLockKey('one-4')], [domainLockKey('one-42')], false],
    ['a domain key and the root', [domainLockKey('one-42')], ['/'], false],
  ];
  it.each(conflicts)('%s: conflict=%s', async (_title, first, second, conflict) => {
    const locks = new PathLocks(SHORT_WAIT_MS);
    const release = await locks.acquire(first, 'first');
    const attempt = locks.acquire(second, 'second');
    if (conflict) {
      const err = await lockedError(attempt);
      expect(err).toBeInstanceOf(StorageError);
      expect(err.reason).toBe('LOCKED');
      expect(err.message).toBe('second: another call is working on this path; retry later');
    } else {
      (await attempt)();
    }
    release();
    expect(locks.size).toBe(0);
  });

  it('a waiter gets the lock as soon as the holder releases it', async () => {
    const locks = new PathLocks(5_000);
    const release = await locks.acquire(['/p'], 'first');
    const started = Date.now();
    // acquire runs up to its wait at once: the second call is now waiting on the first's release.
    const second = locks.acquire(['/p'], 'second');
    expect(locks.size).toBe(1);
    release();
    (await second)();
    expect(locks.size).toBe(0);
    // Woken by the release, not by its 5 s wait running out.
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('withLock releases on failure, and a release is idempotent', async () => {
    const locks = new PathLocks(SHORT_WAIT_MS);
    await expect(locks.withLock(['/p'], 'x', () => Promise.reject(new Error('boom')))).rejects.toThrow(
      'boom',
    );
    expect(locks.size).toBe(0);
    const release = await locks.acquire(['/p'], 'x');
    release();
    release();
    expect(locks.size).toBe(0);
  });

  it('an aborted call stops waiting', async () => {
    const locks = new PathLocks(SHORT_WAIT_MS);
    const controller = new AbortController();
    controller.abort();
    await expect(locks.acquire(['/p'], 'x', controller.signal)).rejects.toThrow();
  });
});
