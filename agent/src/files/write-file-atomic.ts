import { randomBytes } from 'node:crypto';
import { chmod, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Random suffix length (bytes) of temporary names: unique enough for concurrent writers. */
const TEMP_SUFFIX_BYTES = 6;
/** Mode of small files the agent writes (markers); readable by the probes that run as oneadmin. */
export const SMALL_FILE_MODE = 0o644;

/** A hidden temporary name beside `path`, in the same directory so the final rename is atomic. */
export function tempNameBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${randomBytes(TEMP_SUFFIX_BYTES).toString('hex')}`);
}

/**
 * Writes `content` under a temporary name beside `path`, then renames it into place: readers see
 * the old file or the new one, never a half-written one. The temporary file is removed on failure.
 */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const tmp = tempNameBeside(path);
  try {
    await writeFile(tmp, content, { flag: 'wx', mode: SMALL_FILE_MODE });
    // The agent's umask (AGENT_UMASK) would leave it 0640: the probes may read it as another user.
    await chmod(tmp, SMALL_FILE_MODE);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
