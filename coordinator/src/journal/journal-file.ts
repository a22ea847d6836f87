import { chmodSync, closeSync, openSync, statSync } from 'node:fs';

/**
 * journal.db and SQLite's companions: the journal records every driver call's arguments and errors,
 * so only the coordinator's user may read it (docs/security.md).
 */
export const JOURNAL_FILE_MODE = 0o600;
const PERMISSION_BITS = 0o777;
/** Files SQLite keeps beside the database in WAL mode. */
const COMPANION_SUFFIXES = ['-wal', '-shm'] as const;

/**
 * Makes sure `path` exists with mode 0600 before SQLite opens it, and puts an existing journal (and
 * its -wal and -shm, from an older coordinator that left them 0644) back to 0600. SQLite's unix VFS
 * creates -wal and -shm with the database file's own permission bits, so they follow.
 */
export function prepareJournalFile(path: string): void {
  // O_CREAT with a mode: a new file never exists with wider permissions, whatever the umask.
  closeSync(openSync(path, 'a', JOURNAL_FILE_MODE));
  for (const file of [path, ...COMPANION_SUFFIXES.map((suffix) => `${path}${suffix}`)]) {
    restrictMode(file);
  }
}

/** chmod 0600 when the mode is anything else (only then: the CLI may read a journal it does not own). */
function restrictMode(file: string): void {
  try {
    if ((statSync(file).mode & PERMISSION_BITS) !== JOURNAL_FILE_MODE) chmodSync(file, JOURNAL_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
