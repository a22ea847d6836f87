import { lstat, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import { runTool } from '../../../common/src/tools/run-tool.js';

// The vTPM state in a backup (docs/backups.md#vtpm): `<vmdir>/tpm` (swtpm's state directory) as a
// tar.gz whose members are `tpm/...`, stored as `backup/disk.tpm.0`. tar runs with an argv, never
// a shell.

const TAR = 'tar';
/** The state directory's name in the VM directory and the archive's one top-level member. */
export const TPM_DIR = 'tpm';
/** The archive's name in `backup/` and in the repository. */
export const TPM_ARCHIVE = 'disk.tpm.0';
/** swtpm's state is a few KiB; anything much larger is not one. */
const MAX_ARCHIVE_BYTES = 16 * 1024 * 1024;
/** A member: `tpm`, `tpm/`, or `tpm/<plain names>`; no `..`, nothing absolute, no odd characters. */
const MEMBER = /^tpm(\/[A-Za-z0-9_+-][A-Za-z0-9._+-]*)*\/?$/;

/**
 * Writes `archive` from `<vmDir>/tpm` when that is a directory; false (nothing written) when the
 * VM has no state directory.
 */
export async function writeTpmArchive(vmDir: string, archive: string, signal: AbortSignal): Promise<boolean> {
  const st = await lstat(join(vmDir, TPM_DIR)).catch(() => undefined);
  if (!st?.isDirectory()) return false;
  await writeAtomically(archive, async (tmp) => {
    await runTool(TAR, ['-c', '-z', '-f', tmp, '-C', vmDir, TPM_DIR], {
      signal,
      what: `tar of ${vmDir}/tpm`,
    });
  });
  return true;
}

/**
 * Replaces `<vmDir>/tpm` with the archive's content: its members are listed and checked first,
 * extracted into a temporary directory beside it, every entry checked again (directories and
 * regular files only), and the directory renamed into place. Returns the number of files.
 */
export async function extractTpmArchive(
  archive: string,
  vmDir: string,
  opts: { what: string; signal: AbortSignal },
): Promise<number> {
  const bad = (why: string): StorageError => new StorageError('BAD_IMAGE', `${opts.what}: ${why}`);
  const st = await lstat(archive).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT')
      throw new StorageError('NOT_FOUND', `${opts.what}: the archive does not exist`);
    throw err;
  });
  if (!st.isFile()) throw bad('the archive is not a regular file');
  if (st.size > MAX_ARCHIVE_BYTES) throw bad(`the archive is larger than ${MAX_ARCHIVE_BYTES} bytes`);
  const tool = { signal: opts.signal, what: opts.what };
  const { stdout } = await runTool(TAR, ['-t', '-z', '-f', archive], tool).catch((err: unknown) => {
    throw new StorageError('BAD_IMAGE', `${opts.what}: the archive is not a tar.gz`, { cause: err });
  });
  const members = stdout.split('\n').filter((m) => m !== '');
  for (const m of members) {
    if (!MEMBER.test(m)) throw bad(`the archive member ${JSON.stringify(m.slice(0, 80))} is not under tpm/`);
  }
  let files = 0;
  await writeAtomically(join(vmDir, TPM_DIR), async (tmp) => {
    await mkdir(tmp);
    await runTool(
      TAR,
      [
        '-x',
        '-z',
        '-f',
        archive,
        '-C',
        tmp,
        '--strip-components=1',
        '--no-same-owner',
        '--no-same-permissions',
      ],
      tool,
    );
    files = await checkTree(tmp, TPM_DIR, bad);
  });
  return files;
}

/**
 * Every entry below `dir` is a directory or a regular file with one name (a hard link could name
 * a file outside); returns how many files.
 */
async function checkTree(dir: string, shown: string, bad: (why: string) => StorageError): Promise<number> {
  let files = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const name = `${shown}/${e.name}`;
    if (e.isDirectory()) files += await checkTree(join(dir, e.name), name, bad);
    else if (e.isFile() && (await lstat(join(dir, e.name))).nlink === 1) files += 1;
    else throw bad(`the archive member ${JSON.stringify(name)} is not a plain file or a directory`);
  }
  return files;
}
