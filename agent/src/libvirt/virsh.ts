import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { runInShell } from './virsh-pool.js';

export const VIRSH = 'virsh';
/** The libvirt connection for the system's QEMU domains (what OpenNebula's KVM driver uses). */
export const DEFAULT_LIBVIRT_URI = 'qemu:///system';
/** A virsh call that is not a long block job answers in well under this. */
const VIRSH_TIMEOUT_MS = 60_000;

export interface VirshOptions {
  /** libvirt connection URI (agent config `libvirt.uri`). */
  readonly uri: string;
  /** The start of any error message: "snapshot create live host01:/.../disk.0 (snapshot 0)". */
  readonly what: string;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  /**
   * A virsh process of its own instead of the agent's long-lived shell (virsh-shell.ts): the health
   * check, which proves that a new connection to libvirt can be made.
   */
  readonly ownProcess?: boolean;
}

/**
 * Runs `virsh -c <uri> -q <args...>` (an argument array, never a shell string) and returns its
 * stdout. libvirt's common refusals get their own reasons, so callers and tests can tell "no such
 * domain" and "not running" from a tool failure; the message keeps virsh's own words.
 *
 * A command that returns at once runs in one of the agent's long-lived virsh shells (one libvirt
 * connection for many commands, virsh-pool.ts); one that waits (`--wait`) runs in a process of its
 * own, so it holds no shell for minutes (the agent's own block jobs are waited for by events instead:
 * block-job-wait.ts).
 */
export async function virsh(args: readonly string[], opts: VirshOptions): Promise<string> {
  try {
    if (!opts.ownProcess && !args.includes('--wait')) {
      return await runInShell(VIRSH, opts.uri, {
        args,
        what: opts.what,
        timeoutMs: opts.timeoutMs ?? VIRSH_TIMEOUT_MS,
        signal: opts.signal,
      });
    }
    const { stdout } = await runTool(VIRSH, ['-c', opts.uri, '-q', ...args], {
      what: opts.what,
      timeoutMs: opts.timeoutMs ?? VIRSH_TIMEOUT_MS,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return stdout;
  } catch (err) {
    throw classify(err);
  }
}

function classify(err: unknown): unknown {
  if (!(err instanceof StorageError) || err.reason !== 'TOOL_FAILED') return err;
  const m = err.message;
  if (/Domain not found|failed to get domain/i.test(m)) {
    return new StorageError('DOMAIN_NOT_FOUND', m, { cause: err });
  }
  if (/domain is not running|Requested operation is not valid: domain is not running/i.test(m)) {
    return new StorageError('DOMAIN_NOT_RUNNING', m, { cause: err });
  }
  if (
    /block job.*(already )?active|active block job|already in use by block job|has a block job|another job|job.*running/i.test(
      m,
    )
  ) {
    return new StorageError('BUSY', m, { cause: err });
  }
  return err;
}
