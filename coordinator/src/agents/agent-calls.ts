import { StorageError } from '../../../common/src/errors.js';
import type { Logger } from '../../../common/src/log.js';
import type { AgentMethod, AgentRequest, AgentResponse } from '../agents/agent-client.js';
import type { AgentRegistry } from '../agents/agent-registry.js';
import type { CoordinatorMetrics } from '../metrics/coordinator-metrics.js';
import { isRetriable } from './retry-policy.js';

/** The journal calls AgentOps makes: one row per agent RPC. */
export interface StepJournal {
  beginStep(requestId: string, step: { host: string; rpc: string; args: unknown }): number;
  endStep(stepId: number, end: { outcome: 'success' | 'failure'; error?: string; bytes?: number }): void;
}

/** Reasons worth a retry: the agent was briefly away, slow, or busy on the same path. */
const RETRIABLE_REASONS = new Set(['AGENT_UNAVAILABLE', 'DEADLINE_EXCEEDED', 'LOCKED']);
const MAX_ATTEMPTS = 4;
const FIRST_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 2_000;

/** How long the retries of one call wait in all: longer than a channel's reconnect backoff (common/src/tls.ts). */
export function retryWindowMs(): number {
  let total = 0;
  for (let attempt = 1, backoff = FIRST_BACKOFF_MS; attempt < MAX_ATTEMPTS; attempt++) {
    total += backoff;
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }
  return total;
}
/**
 * Long calls: moving image data; they get the transfer deadline. A backup copies whole disks, and
 * a cancel waits for the aborted backup to wind down and for block commits. Registering an image
 * downloads it; a convert, an export (MD5 over the whole image, a flattened copy) and a snapshot
 * revert or flatten of a persistent image copy whole images; a restored raw disk is converted.
 */
const TRANSFER_METHODS = new Set<AgentMethod>([
  'receive',
  'copy',
  'resize',
  'backupPrepare',
  'backupFinish',
  'backupCancel',
  'importImage',
  'convert',
  'exportImage',
  'imageSnapshotRevert',
  'imageSnapshotFlatten',
  'openBackupChain',
  'flattenBackups',
  'receiveBackup',
  'restoreDisk',
]);

/**
 * Agent calls on behalf of one driver call: a deadline on each, the request id in metadata, a
 * journal row per RPC, capped exponential retries of idempotent calls, and bytes moved counted.
 */
export class AgentOps {
  bytesMoved = 0;
  readonly hosts = new Set<string>();
  /**
   * Agents whose last call failed for want of an answer (unreachable, or a control call past its
   * deadline): a cleanup after the failure skips them rather than spend its retries on a host cut
   * off by the network (made-directories.ts).
   */
  readonly unreachable = new Set<string>();
  /** Each attempt's duration, outcome and bytes (docs/metrics.md); unset without metrics. */
  metrics: CoordinatorMetrics | undefined;

  constructor(
    private readonly agents: AgentRegistry,
    private readonly journal: StepJournal,
    private readonly requestId: string,
    private readonly deadlines: { controlMs: number; transferMs: number },
    private readonly signal: AbortSignal,
    private readonly logger: Logger,
  ) {}

  /**
   * `opts.signal` cancels this one call besides the driver call's own cancel (a backup upload that
   * the datastore's backup_cancel stops, coordinator/src/actions/ds-backup/running-backups.ts).
   */
  call<M extends AgentMethod>(
    host: string,
    method: M,
    request: AgentRequest<M>,
    opts: { signal?: AbortSignal } = {},
  ): Promise<AgentResponse<M>> {
    const signal = opts.signal ? AbortSignal.any([this.signal, opts.signal]) : this.signal;
    return this.send(host, method, request, signal);
  }

  /**
   * A call that runs even when the driver call was cancelled (the shim gone, the coordinator
   * stopping): undoing what a failed action made must not be cut short by the cancel that made it
   * fail. It still has its deadline.
   */
  callDetached<M extends AgentMethod>(
    host: string,
    method: M,
    request: AgentRequest<M>,
  ): Promise<AgentResponse<M>> {
    return this.send(host, method, request, undefined);
  }

  private async send<M extends AgentMethod>(
    host: string,
    method: M,
    request: AgentRequest<M>,
    signal: AbortSignal | undefined,
  ): Promise<AgentResponse<M>> {
    const client = this.agents.get(host);
    const name = client.agent.name;
    this.hosts.add(name);
    const deadlineMs = TRANSFER_METHODS.has(method) ? this.deadlines.transferMs : this.deadlines.controlMs;
    let backoff = FIRST_BACKOFF_MS;
    for (let attempt = 1; ; attempt++) {
      const step = this.journal.beginStep(this.requestId, { host: name, rpc: method, args: request });
      const startedMs = Date.now();
      try {
        const response = await client.call(method, request, {
          deadlineMs,
          requestId: this.requestId,
          ...(signal ? { signal } : {}),
        });
        const bytes = (response as { bytes?: number }).bytes ?? 0;
        this.bytesMoved += bytes;
        this.journal.endStep(step, { outcome: 'success', bytes });
        this.unreachable.delete(name);
        this.metrics?.agentCall(name, method, startedMs, undefined, bytes);
        return response;
      } catch (err) {
        const e = err instanceof StorageError ? err : new StorageError('INTERNAL', String(err));
        this.journal.endStep(step, { outcome: 'failure', error: e.message });
        this.metrics?.agentCall(name, method, startedMs, e.reason);
        const retry =
          isRetriable(method) &&
          RETRIABLE_REASONS.has(e.reason) &&
          // A long call that ran out of time was working, only too slowly (a slow disk, a slow
          // link): a new attempt starts from nothing and meets the same end, and oned would hear
          // of it only after MAX_ATTEMPTS deadlines.
          !(e.reason === 'DEADLINE_EXCEEDED' && TRANSFER_METHODS.has(method)) &&
          attempt < MAX_ATTEMPTS &&
          signal?.aborted !== true;
        if (!retry) {
          const silent =
            e.reason === 'AGENT_UNAVAILABLE' ||
            (e.reason === 'DEADLINE_EXCEEDED' && !TRANSFER_METHODS.has(method));
          if (silent) this.unreachable.add(name);
          throw e;
        }
        this.logger.warn({ host: name, method, attempt, reason: e.reason }, 'retrying agent call');
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }
}
