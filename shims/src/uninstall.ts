// Takes out what installShims put under oned's remotes directory: our shims (and their driver
// directories once empty) and our probes, putting back the OpenNebula probes they replaced. Only
// files carrying our marker are removed; a repeat finds nothing to do.
import { rename, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { shimEntries } from '../../common/src/drivers/driver-actions.js';
import { PROBE_FILES } from './agent-query-script.js';
import { BACKUP_SUFFIX, isOwnFile } from './installed-files.js';

export async function uninstallShims(opts: {
  remotesDir: string;
}): Promise<{ removed: string[]; restored: string[] }> {
  const removed: string[] = [];
  const restored: string[] = [];
  const dirs = new Set<string>();
  for (const entry of shimEntries()) {
    const file = join(opts.remotesDir, entry.kind, entry.driver, entry.action);
    dirs.add(dirname(file));
    if (await isOwnFile(file)) {
      await rm(file);
      removed.push(file);
    }
  }
  for (const dir of dirs) {
    // Only an empty directory goes: anything an operator added there stays, with its directory.
    await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT' && err.code !== 'ENOTEMPTY') throw err;
    });
  }
  for (const probe of PROBE_FILES) {
    const file = join(opts.remotesDir, 'im', probe.path);
    if (await isOwnFile(file)) {
      await rm(file);
      removed.push(file);
    }
    const backup = `${file}${BACKUP_SUFFIX}`;
    if ((await isOwnFile(backup)) === false) {
      await rename(backup, file);
      restored.push(file);
    }
  }
  return { removed, restored };
}
