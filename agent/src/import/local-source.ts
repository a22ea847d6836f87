import { open, realpath, type FileHandle } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import { isInside } from '../paths/roots.js';
import { READ_FLAGS, openedPath } from '../transfer/verified-open.js';

/** A local path to import and the datastore's rules for it (LocalImportSource in the contract). */
export interface LocalRules {
  path: string;
  safeDirs: readonly string[];
  restrictedDirs: readonly string[];
}

/**
 * The real path of a local upload, once it passes the rules of
 * docs/image-datastore.md#registering-an-image-cp-on-the-agent: absolute; resolved (every symlink
 * followed) before anything is checked; inside one of this agent's import directories; then
 * allowed when under a SAFE_DIRS entry, else refused (PATH_RESTRICTED) when under a RESTRICTED_DIRS
 * entry. "Under" goes by whole path components (/var/tmp does not cover /var/tmpfoo), where
 * OpenNebula matched string prefixes. Each dir counts as written and as it resolves here.
 */
export async function resolveLocalImport(
  rules: LocalRules,
  importDirs: readonly string[],
  what: string,
): Promise<string> {
  const { path } = rules;
  if (!path.startsWith('/') || path.includes('\0'))
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${what}: local.path must be an absolute path, got ${JSON.stringify(path)}`,
    );
  const safe = await dirsOf(rules.safeDirs, 'local.safe_dirs', what);
  const restricted = await dirsOf(rules.restrictedDirs, 'local.restricted_dirs', what);
  let real: string;
  try {
    real = await realpath(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new StorageError('NOT_FOUND', `${what}: ${path} does not exist`);
    throw asStorageError(err, what, path);
  }
  const shown = real === path ? path : `${path} (resolves to ${real})`;
  const imports = await dirsOf(importDirs, 'imports.dirs', what);
  if (!imports.some((d) => d.forms.some((f) => isInside(real, f))))
    throw new StorageError(
      'PATH_RESTRICTED',
      `${what}: ${shown} is not allowed: it is outside this agent's import directories (${importDirs.join(', ')})`,
    );
  if (safe.some((d) => d.forms.some((f) => isInside(real, f)))) return real;
  const hit = restricted.find((d) => d.forms.some((f) => isInside(real, f)));
  if (hit)
    throw new StorageError(
      'PATH_RESTRICTED',
      `${what}: ${shown} is not allowed: it is under ${hit.given} (RESTRICTED_DIRS) and under no SAFE_DIRS entry`,
    );
  return real;
}

/**
 * Opens the file `resolveLocalImport` returned as the transfer code opens a file it sends (the same
 * flags: O_NOFOLLOW, the real path has no symlink left, so one swapped in since is refused, not
 * followed) and proves the descriptor is that regular file (the kernel's name for it is the checked
 * real path): a path swapped after the check is not read. Refusals are the import's own
 * (PATH_RESTRICTED, INVALID_ARGUMENT), not a transfer's.
 */
export async function openLocalImport(real: string, what: string): Promise<{ fh: FileHandle; size: number }> {
  let fh: FileHandle;
  try {
    fh = await open(real, READ_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP')
      throw new StorageError('PATH_RESTRICTED', `${what}: ${real} was replaced by a symlink`);
    throw asStorageError(err, what, real);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new StorageError('INVALID_ARGUMENT', `${what}: ${real} is not a regular file`);
    const opened = await openedPath(fh);
    if (opened !== real)
      throw new StorageError(
        'PATH_RESTRICTED',
        `${what}: opened ${opened}, not ${real}: its path changed while checked`,
      );
    return { fh, size: st.size };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** A rule's directory as written (tidied) and as it resolves on this host, when it exists. */
async function dirsOf(
  dirs: readonly string[],
  field: string,
  what: string,
): Promise<Array<{ given: string; forms: string[] }>> {
  const out: Array<{ given: string; forms: string[] }> = [];
  for (const [i, raw] of dirs.entries()) {
    const given = raw.trim();
    if (given === '') continue;
    if (!given.startsWith('/') || given.includes('\0'))
      throw new StorageError(
        'INVALID_ARGUMENT',
        `${what}: ${field}[${i}] must be an absolute path, got ${JSON.stringify(raw)}`,
      );
    const tidy = given.replace(/\/{2,}/g, '/').replace(/(.)\/$/, '$1');
    const real = await realpath(tidy).catch(() => undefined);
    out.push({ given, forms: real !== undefined && real !== tidy ? [tidy, real] : [tidy] });
  }
  return out;
}
