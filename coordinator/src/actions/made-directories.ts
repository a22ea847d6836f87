import type { ActionContext } from './action-context.js';
import { formatHostPath, type HostPath } from './host-path.js';

/** How long an undo waits for a connection to an agent that stopped answering during the call. */
const REACHABLE_AGAIN_MS = 2_000;

/**
 * The directories one driver call made on the hosts (MakeDir's `made`), to take away again when a
 * later step fails: a clone, mv or context that cannot copy (a full disk, a refused or cancelled
 * transfer) leaves no VM directory, datastore directory or staging directory that was not there
 * before (docs/security.md). Only what this call created goes, and only while empty (the agent's
 * RemoveEmptyDirs): a directory that was there before, or that another call filled meanwhile, stays.
 */
export class MadeDirectories {
  private readonly made: Array<{ host: string; paths: string[] }> = [];
  private readonly written: HostPath[] = [];
  /** Agents found still silent during undo(). */
  private readonly silent = new Set<string>();

  constructor(private readonly ctx: ActionContext) {}

  /** mkdir -p of `at` on its host; true when `at` itself did not exist before. */
  async make(at: HostPath): Promise<boolean> {
    const r = await this.ctx.ops.call(at.host, 'makeDir', { path: at.path });
    if (r.made.length > 0) this.made.push({ host: at.host, paths: r.made });
    return r.created;
  }

  /**
   * A file or tree this call writes where nothing was before it (the caller checked, before its
   * first change): undo deletes it, before taking the directories away.
   */
  writes(at: HostPath): void {
    this.written.push(at);
  }

  /**
   * Deletes what writes() named, then removes what make() created, latest first, each only while
   * empty. A failure here is logged and never thrown: the caller reports the action's own error,
   * the one oned must see.
   */
  async undo(): Promise<void> {
    for (const at of this.written.splice(0).reverse()) {
      if (await this.unreachable(at.host, `${formatHostPath(at)} not deleted`)) continue;
      try {
        await this.ctx.ops.callDetached(at.host, 'delete', { path: at.path });
      } catch (err) {
        this.ctx.logger.warn({ err }, `could not delete ${formatHostPath(at)} after a failed action`);
      }
    }
    for (const { host, paths } of this.made.splice(0).reverse()) {
      if (await this.unreachable(host, `the directories it made not removed: ${paths.join(', ')}`)) continue;
      try {
        const r = await this.ctx.ops.callDetached(host, 'removeEmptyDirs', { paths });
        const kept = paths.filter((p) => !r.removed.includes(p));
        this.ctx.logger.info(
          { host, removed: r.removed, kept },
          'removed the empty directories a failed action made',
        );
      } catch (err) {
        this.ctx.logger.warn(
          { paths, err },
          `could not remove the directories a failed action made on ${formatHostPath({ host, path: paths[0] ?? '' })}`,
        );
      }
    }
  }

  /**
   * Whether `host` stopped answering during this call (a partition, a host down): its undo is
   * skipped, since each attempt would only wait out its deadline; the agent removes its own
   * temporaries when the call is cancelled, and the retried call finds and reuses what stays. An
   * agent that merely restarted (a refused connection, then back) connects again within
   * REACHABLE_AGAIN_MS and gets its undo.
   */
  private async unreachable(host: string, what: string): Promise<boolean> {
    const name = this.ctx.agents.canonical(host);
    if (!this.ctx.ops.unreachable.has(name)) return false;
    if (!this.silent.has(name)) {
      try {
        await this.ctx.agents.get(host).ready(REACHABLE_AGAIN_MS);
        return false;
      } catch {
        // Still silent: asked once per undo, skipped from here on.
        this.silent.add(name);
      }
    }
    this.ctx.logger.warn(
      { host },
      `${host} is not answering: nothing undone there after the failed action (${what})`,
    );
    return true;
  }
}

/**
 * Runs `body` with a fresh MadeDirectories; when it fails, what it made goes again (undo) and its
 * error is rethrown unchanged.
 */
export async function withMadeDirectories<T>(
  ctx: ActionContext,
  body: (dirs: MadeDirectories) => Promise<T>,
): Promise<T> {
  const dirs = new MadeDirectories(ctx);
  try {
    return await body(dirs);
  } catch (err) {
    await dirs.undo();
    throw err;
  }
}
