import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../../../common/src/metrics/daemon-registry.js';
import type { MonitorMetrics } from '../monitor/monitor-pusher.js';
import type { CacheSize } from '../monitor/datastore-scanner.js';

/** Agent RPCs: a control call is milliseconds, a transfer hours (seconds). */
const RPC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200];
/** Monitoring cycles: a scan of the datastores, normally well under the 30 s VM interval. */
const MONITOR_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** The `reason` label of a call that succeeded, or failed without one (bounded labels). */
export const NO_REASON = 'none';
const MS_PER_S = 1000;

/**
 * What kind of path moved an agent's bytes (the `path_kind` label; docs/metrics.md#agent).
 * `transfer_received` (Receive: pulled from another agent over the data path), `transfer_sent`
 * (served to another agent over the data path), `local` (Copy inside this node), `import`
 * (ImportImage: fetched from a URL or a local upload), `backup_received` (ReceiveBackup),
 * `export` (served by the export listener to a marketplace).
 */
export type PathKind =
  'transfer_received' | 'transfer_sent' | 'local' | 'import' | 'backup_received' | 'export';

/**
 * The agent's metrics, on the daemon's own registry. Labels are bounded: methods are the
 * service's (anything else is `unknown`), codes gRPC's, reasons the catalogue's, kinds and
 * message types fixed sets; never a path, VM or request id.
 */
export class AgentMetrics implements MonitorMetrics {
  private readonly rpcSeconds: Histogram<'method' | 'code' | 'reason'>;
  private readonly bytes: Counter<'path_kind'>;
  private readonly cycleSeconds: Histogram<'kind' | 'result'>;
  private readonly messages: Counter<'type' | 'result'>;
  private cache: (() => CacheSize) | undefined;

  constructor(registry: Registry, jobsRunning: () => number) {
    const registers = [registry];
    const p = METRIC_PREFIX;
    this.rpcSeconds = new Histogram({
      name: `${p}rpc_server_duration_seconds`,
      help: 'RPCs this agent served, by method, gRPC status code and reason (docs/errors.md).',
      labelNames: ['method', 'code', 'reason'],
      buckets: RPC_BUCKETS,
      registers,
    });
    new Gauge({
      name: `${p}jobs_in_flight`,
      help: 'RPCs running on this agent now (the jobs ListJobs lists).',
      registers,
      collect() {
        this.set(jobsRunning());
      },
    });
    this.bytes = new Counter({
      name: `${p}bytes_moved_total`,
      help: 'Bytes this agent moved, by path kind.',
      labelNames: ['path_kind'],
      registers,
    });
    this.cycleSeconds = new Histogram({
      name: `${p}monitor_cycle_duration_seconds`,
      help: 'Monitoring runs in push mode (collect, encode, send), by kind (vm, system) and result.',
      labelNames: ['kind', 'result'],
      buckets: MONITOR_BUCKETS,
      registers,
    });
    this.messages = new Counter({
      name: `${p}monitord_messages_total`,
      help: 'Messages sent to monitord, by message type and result.',
      labelNames: ['type', 'result'],
      registers,
    });
    const cacheSize = (): CacheSize | undefined => this.cache?.();
    new Gauge({
      name: `${p}monitor_cache_entries`,
      help: "The disk monitor's cache after its last scan, by kind (vm_dirs, snapshot_dirs, layers, watches).",
      labelNames: ['kind'],
      registers,
      collect() {
        const c = cacheSize();
        if (!c) return;
        this.set({ kind: 'vm_dirs' }, c.vmDirs);
        this.set({ kind: 'snapshot_dirs' }, c.snapDirs);
        this.set({ kind: 'layers' }, c.layers);
        this.set({ kind: 'watches' }, c.watches);
      },
    });
  }

  /** Where the monitor cache gauge reads its figures. */
  monitorCache(size: () => CacheSize): void {
    this.cache = size;
  }

  /** One served RPC, ended; `reason` as the call's x-reason metadata says. */
  rpcServed(method: string, code: string, reason: string | undefined, startedMs: number): void {
    const seconds = (performance.now() - startedMs) / MS_PER_S;
    this.rpcSeconds.observe({ method, code, reason: reason ?? NO_REASON }, seconds);
  }

  moved(kind: PathKind, bytes: number): void {
    if (bytes > 0) this.bytes.inc({ path_kind: kind }, bytes);
  }

  monitorCycle(
    kind: 'vm' | 'system',
    type: string,
    result: 'success' | 'failure',
    seconds: number,
    messages: number,
  ): void {
    this.cycleSeconds.observe({ kind, result }, seconds);
    this.messages.inc({ type, result }, messages);
  }
}
