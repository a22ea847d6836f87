import { StorageError } from '../../../common/src/errors.js';
import { type ShellCommand, VirshShell } from './virsh-shell.js';

/**
 * How many virsh shells one agent keeps per libvirt URI. A shell runs one command at a time; a few
 * let a slow command (a guest agent that takes seconds to freeze) not hold up every other VM's.
 */
export const MAX_SHELLS = 3;

/** The shells of one libvirt URI: started on first use, reused, replaced when one dies. */
class ShellPool {
  private readonly shells = new Set<VirshShell>();
  private readonly idle: VirshShell[] = [];
  readonly busy = new Set<VirshShell>();
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly file: string,
    private readonly uri: string,
  ) {}

  async run(cmd: ShellCommand): Promise<string> {
    const shell = await this.acquire(cmd);
    this.busy.add(shell);
    try {
      return await shell.run(cmd);
    } finally {
      this.busy.delete(shell);
      this.release(shell);
    }
  }

  close(): void {
    for (const s of this.shells) s.close();
    this.shells.clear();
    this.idle.length = 0;
  }

  private async acquire(cmd: ShellCommand): Promise<VirshShell> {
    for (;;) {
      const ready = this.idle.pop();
      if (ready && !ready.dead) return ready;
      if (ready) continue;
      if (this.shells.size < MAX_SHELLS) {
        const shell = new VirshShell(this.file, this.uri);
        this.shells.add(shell);
        return shell;
      }
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          const i = this.waiting.indexOf(wake);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new StorageError('TOOL_FAILED', `${cmd.what}: ${this.file} was cancelled`));
        };
        const wake = (): void => {
          cmd.signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        if (cmd.signal?.aborted) return onAbort();
        cmd.signal?.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(wake);
      });
    }
  }

  private release(shell: VirshShell): void {
    if (shell.dead) this.shells.delete(shell);
    else this.idle.push(shell);
    this.waiting.shift()?.();
  }
}

const pools = new Map<string, ShellPool>();

/** Runs one virsh command in a long-lived shell of `uri` (virsh-shell.ts). */
export function runInShell(file: string, uri: string, cmd: ShellCommand): Promise<string> {
  const key = `${file}\0${uri}`;
  let pool = pools.get(key);
  if (!pool) {
    pool = new ShellPool(file, uri);
    pools.set(key, pool);
  }
  return pool.run(cmd);
}

/** The process ids of the shells running a command now (for tests and diagnostics). */
export function busyShellPids(): number[] {
  return [...pools.values()].flatMap((p) => [...p.busy].map((s) => s.pid).filter((x) => x !== undefined));
}

/** Stops every shell (the agent is stopping; a test's end). Later calls start new ones. */
export function closeShells(): void {
  for (const p of pools.values()) p.close();
  pools.clear();
}
