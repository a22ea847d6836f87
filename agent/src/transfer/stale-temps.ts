import type { Dirent } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TEMP_RANDOM_BYTES, parseTempName, tempName } from '../../../common/src/files/temp-name.js';

/**
 * Temporaries of interrupted work (docs/security.md, "Nothing is left behind"). A receive builds
 * under `.<name>.tmp-<agent>-<12 hex>` beside its destination (common/src/files/temp-name.ts); an agent killed mid-receive leaves
 * that behind, possibly gigabytes. What is stale:
 * - a temporary named for this agent that no receive of this process is using: this agent made it
 *   in an earlier life (it was killed) or it is left from a receive that failed to clean up;
 * - any other `.<name>.tmp-*` (another agent's on a shared datastore, or from other work or an
 *   older version) only when nothing in it changed for FOREIGN_STALE_MS: a running receive writes
 *   continuously, and another host's agent may be using one right now.
 * `.old-` asides are never swept: after a crash one may be the only copy of a replaced directory.
 */
export const FOREIGN_STALE_MS = 24 * 3600 * 1000;
const RANDOM_PART = new RegExp(`^[0-9a-f]{${TEMP_RANDOM_BYTES * 2}}$`);
/** Below each root: datastores, their VM or image directories, a VM's directory. */
const SWEEP_DEPTH = 2;

export function receiveTempName(base: string, agent: string): string {
  return tempName(base, 'tmp', agent);
}

export interface SweepOptions {
  /** This agent's name: its own temporaries are recognised by it. */
  agent: string;
  /** Temporaries (names) of receives running in this process: never stale. */
  active: ReadonlySet<string>;
  now?: number;
}

/**
 * Removes the stale temporaries in `dir` (the directory itself, by any path: a descriptor path is
 * fine); with `base`, only those for that name. Returns the names removed. Errors on one entry do
 * not stop the others (something that cannot be removed now is tried again next time).
 */
export async function sweepDirectory(dir: string, opts: SweepOptions, base?: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const temp = parseTempName(name);
    if (temp?.tag !== 'tmp' || (base !== undefined && temp.base !== base)) continue;
    if (!(await isStale(join(dir, name), temp.rest, name, opts))) continue;
    await rm(join(dir, name), { recursive: true, force: true }).then(
      () => removed.push(name),
      () => undefined,
    );
  }
  return removed;
}

/** Sweeps `root` and the directories below it down to SWEEP_DEPTH (never through a symlink). */
export async function sweepRoot(root: string, opts: SweepOptions): Promise<string[]> {
  const removed: string[] = [];
  const visit = async (dir: string, depth: number): Promise<void> => {
    removed.push(...(await sweepDirectory(dir, opts)).map((n) => join(dir, n)));
    if (depth === SWEEP_DEPTH) return;
    const children: Dirent[] = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const c of children) if (c.isDirectory()) await visit(join(dir, c.name), depth + 1);
  };
  await visit(root, 0);
  return removed;
}

async function isStale(path: string, tag: string, name: string, opts: SweepOptions): Promise<boolean> {
  const ours = tag.startsWith(`${opts.agent}-`) && RANDOM_PART.test(tag.slice(opts.agent.length + 1));
  if (ours) return !opts.active.has(name);
  const newest = await newestChange(path).catch(() => undefined);
  return newest !== undefined && (opts.now ?? Date.now()) - newest > FOREIGN_STALE_MS;
}

/** Latest mtime in a file or tree: a receive writing a file deep inside keeps it fresh. */
async function newestChange(path: string): Promise<number> {
  const st = await lstat(path);
  let newest = st.mtimeMs;
  if (st.isDirectory()) {
    for (const name of await readdir(path)) newest = Math.max(newest, await newestChange(join(path, name)));
  }
  return newest;
}
