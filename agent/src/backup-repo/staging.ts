/**
 * Backups in progress (docs/backups.md#repository): a backup is pulled into `.<backup_id>.partial`
 * beside its final name and renamed into place only once complete, so listings (which skip
 * dot-names) never see half a backup. A receive that fails or is cancelled removes its staging
 * directory itself; one left by an agent that was killed is removed by the next ReceiveBackup into
 * the same `<vmid>/` directory: it is a staging directory that no receive of this process is using
 * and that nothing changed since this process started (a running receive writes continuously), or
 * for a day. A repository is written by one agent (its backup server's).
 */
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

const PARTIAL = /^\.[0-9a-f]{6,32}\.partial$/;
const DAY_MS = 24 * 3600 * 1000;
/** When this process started (ms since the epoch). */
const STARTED_AT = Date.now() - process.uptime() * 1000;

/** Real paths of the staging directories receives of this process are filling. */
const active = new Set<string>();

export function stagingName(backupId: string): string {
  return `.${backupId}.partial`;
}

/** Marks `real` (a staging directory's real path) in use until the returned function is called. */
export function holdStaging(real: string): () => void {
  active.add(real);
  return () => active.delete(real);
}

/**
 * Removes the stale staging directories in `dir` (any path to it, a descriptor path included;
 * `realDir` is its real path, by which active ones are known). Returns the names removed.
 */
export async function sweepStaging(dir: string, realDir: string, now = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!PARTIAL.test(name) || active.has(join(realDir, name))) continue;
    const newest = await newestChange(join(dir, name)).catch(() => undefined);
    if (newest === undefined || (newest >= STARTED_AT && now - newest < DAY_MS)) continue;
    await rm(join(dir, name), { recursive: true, force: true }).then(
      () => removed.push(name),
      () => undefined,
    );
  }
  return removed;
}

/** Latest mtime of a staging directory and the files in it (it holds no subdirectories). */
async function newestChange(path: string): Promise<number> {
  let newest = (await lstat(path)).mtimeMs;
  for (const name of await readdir(path).catch(() => [] as string[])) {
    newest = Math.max(
      newest,
      await lstat(join(path, name)).then(
        (s) => s.mtimeMs,
        () => 0,
      ),
    );
  }
  return newest;
}
