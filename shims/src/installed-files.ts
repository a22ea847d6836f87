// What tells an installed file of ours from one of OpenNebula's: the second line of every shim and
// probe we write starts with this (shimSource, agentQueryScript). A probe of OpenNebula's that ours
// replaces is kept beside it under BACKUP_SUFFIX, and put back by uninstallShims.
import { readFile } from 'node:fs/promises';

export const OWN_FILE_MARKER = '// one-storage ';
export const BACKUP_SUFFIX = '.before-one-storage';

/** Whether `file` exists and is one we wrote; undefined when it does not exist. */
export async function isOwnFile(file: string): Promise<boolean | undefined> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (text === undefined) return undefined;
  return (text.split('\n', 2)[1] ?? '').startsWith(OWN_FILE_MARKER);
}
