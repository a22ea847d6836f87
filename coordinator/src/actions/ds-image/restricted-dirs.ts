import { posix } from 'node:path';
import { StorageError } from '../../../../common/src/errors.js';
import type { LocalImportSource } from '../../../../proto/gen/onestorage/agent/v1/agent.js';
import { cleanPath } from '../host-path.js';

/** Where a local PATH may be registered from (docs/image-datastore.md#cp). */
export interface ImportDirRules {
  /** The datastore's SAFE_DIRS: a path under one of them is allowed. */
  safeDirs: string[];
  /** OpenNebula's implicit RESTRICTED_DIRS, then the datastore's: a path under one of them (and under no safe one) is refused. */
  restrictedDirs: string[];
}

/**
 * The effective rules of a datastore, as fs's cp builds them: RESTRICTED_DIRS is the coordinator's
 * implicit list (`/var/lib/one/ /etc/one/ <oneadmin home>/` by default) plus the datastore's own;
 * SAFE_DIRS is the datastore's. Entries are cleaned; a relative one can match no absolute path (in
 * fs neither) and is dropped.
 */
export function importDirRules(
  implicitRestricted: readonly string[],
  ds: { safeDirs: readonly string[]; restrictedDirs: readonly string[] },
): ImportDirRules {
  const absolute = (dirs: readonly string[]): string[] => [
    ...new Set(dirs.filter((d) => d.startsWith('/')).map(cleanPath)),
  ];
  return {
    safeDirs: absolute(ds.safeDirs),
    restrictedDirs: absolute([...implicitRestricted, ...ds.restrictedDirs]),
  };
}

/** What the agent gets: it applies the same rules again to the path with every symlink resolved. */
export function localImportSource(path: string, rules: ImportDirRules): LocalImportSource {
  return { path, safeDirs: rules.safeDirs, restrictedDirs: rules.restrictedDirs };
}

/**
 * The early check of the path as written (`..` folded, symlinks not followed: the agent holding
 * the file checks the resolved path), so that a refused PATH fails before any host is asked.
 * Directory boundaries count: `/var/tmp` covers `/var/tmp/x`, not `/var/tmpfoo`. PATH_RESTRICTED
 * names the directory and the way out.
 */
export function checkImportPath(
  path: string,
  rules: ImportDirRules,
  owner: string,
  datastoreId: number,
): void {
  const literal = posix.normalize(path);
  if (rules.safeDirs.some((dir) => isUnder(literal, dir))) return;
  const restricting = rules.restrictedDirs.find((dir) => isUnder(literal, dir));
  if (restricting !== undefined) {
    throw new StorageError(
      'PATH_RESTRICTED',
      `${owner}: not allowed to register ${path}: it lies under ${restricting}, one of the restricted directories (RESTRICTED_DIRS of datastore ${datastoreId} and OpenNebula's implicit ones); list a directory holding it in SAFE_DIRS to allow it`,
    );
  }
}

/** Whether `path` is `dir` or lies below it. */
export function isUnder(path: string, dir: string): boolean {
  const d = cleanPath(dir);
  return d === '/' || path === d || path.startsWith(`${d}/`);
}
