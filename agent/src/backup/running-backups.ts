import type { AgentContext } from '../rpc/context.js';

/** How long BackupCancel waits for an aborted BackupPrepare to wind down before cleaning up anyway. */
export const CANCEL_WAIT_MS = 60_000;

interface Running {
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

/**
 * The backups this agent is running, by local VM directory, so BackupCancel (another RPC) can abort
 * one: the abort reaches every qemu-img / qemu-nbd child through runTool's signal, and the backup's
 * own failure path aborts its libvirt job. Only in memory: after an agent restart nothing runs, and
 * the next BackupPrepare undoes what the killed one left (overlays, a libvirt job, checkpoints).
 */
export class RunningBackups {
  private readonly byDir = new Map<string, Running>();

  /** Runs `fn` registered under `vmDir` with a signal that fires on `signal` or on cancel(vmDir). */
  async run<T>(vmDir: string, signal: AbortSignal, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    const entry: Running = { controller, done };
    this.byDir.set(vmDir, entry);
    try {
      return await fn(AbortSignal.any([signal, controller.signal]));
    } finally {
      if (this.byDir.get(vmDir) === entry) this.byDir.delete(vmDir);
      finished();
    }
  }

  /** Aborts the backup of `vmDir` and waits (bounded) until it has ended; false when none ran. */
  async cancel(vmDir: string, reason: Error): Promise<boolean> {
    const entry = this.byDir.get(vmDir);
    if (!entry) return false;
    entry.controller.abort(reason);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([entry.done, new Promise((r) => (timer = setTimeout(r, CANCEL_WAIT_MS)))]);
    clearTimeout(timer);
    return true;
  }

  isRunning(vmDir: string): boolean {
    return this.byDir.has(vmDir);
  }
}

const registries = new WeakMap<AgentContext, RunningBackups>();

/** The registry of one agent (keyed by its context: tests run several agents in one process). */
export function runningBackups(agent: AgentContext): RunningBackups {
  let r = registries.get(agent);
  if (!r) {
    r = new RunningBackups();
    registries.set(agent, r);
  }
  return r;
}
