import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../../../common/src/metrics/daemon-registry.js';
import type { AgentMethod } from '../agents/agent-client.js';
import { bytesPathKind } from './path-kinds.js';

/** Driver calls last from milliseconds (a stat) to hours (a large transfer), in seconds. */
const DRIVER_CALL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 10800];
/** Agent RPCs: a control call is milliseconds, a transfer hours. */
const AGENT_RPC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200];
/** The label value for a kind, driver or action one-storage does not implement (bounded labels). */
export const UNKNOWN_LABEL = 'unknown';
const MS_PER_S = 1000;

export type Outcome = 'success' | 'failure';

/** One driver call being measured: end it once, with its outcome (and reason on failure). */
export interface DriverCallTimer {
  end(outcome: 'success'): void;
  end(outcome: 'failure', reason: string): void;
}

/**
 * The coordinator's metrics (docs/metrics.md#coordinator), on the daemon's own registry. Labels
 * are bounded: kinds, drivers and actions are those one-storage implements (anything else is
 * `unknown`), agents those of the config, reasons those of the catalogue; never a path, VM or
 * request id.
 */
export class CoordinatorMetrics {
  private readonly calls: Counter<'kind' | 'driver' | 'action' | 'outcome'>;
  private readonly callSeconds: Histogram<'kind' | 'driver' | 'action' | 'outcome'>;
  private readonly errors: Counter<'kind' | 'driver' | 'action' | 'reason'>;
  private readonly inFlight: Gauge<'kind'>;
  private readonly rpcSeconds: Histogram<'agent' | 'method' | 'outcome'>;
  private readonly rpcErrors: Counter<'agent' | 'method' | 'reason'>;
  private readonly bytes: Counter<'path_kind'>;
  /** Start times (ms) of the driver calls running now, for the oldest one's age. */
  private readonly running = new Set<{ startedMs: number }>();

  constructor(
    registry: Registry,
    private readonly now: () => number = Date.now,
  ) {
    const registers = [registry];
    const p = METRIC_PREFIX;
    this.calls = new Counter({
      name: `${p}driver_calls_total`,
      help: 'Driver calls finished, by kind (tm, datastore), driver, action and outcome.',
      labelNames: ['kind', 'driver', 'action', 'outcome'],
      registers,
    });
    this.callSeconds = new Histogram({
      name: `${p}driver_call_duration_seconds`,
      help: 'How long driver calls took, from the shim request to the reply.',
      labelNames: ['kind', 'driver', 'action', 'outcome'],
      buckets: DRIVER_CALL_BUCKETS,
      registers,
    });
    this.errors = new Counter({
      name: `${p}driver_call_errors_total`,
      help: 'Failed driver calls by reason (docs/errors.md).',
      labelNames: ['kind', 'driver', 'action', 'reason'],
      registers,
    });
    this.inFlight = new Gauge({
      name: `${p}driver_calls_in_flight`,
      help: 'Driver calls running now.',
      labelNames: ['kind'],
      registers,
    });
    const running = this.running;
    const clock = this.now;
    new Gauge({
      name: `${p}driver_call_oldest_in_flight_seconds`,
      help: 'Age of the oldest driver call running now; 0 when none is.',
      registers,
      collect() {
        let oldest = Infinity;
        for (const r of running) oldest = Math.min(oldest, r.startedMs);
        this.set(oldest === Infinity ? 0 : (clock() - oldest) / MS_PER_S);
      },
    });
    this.rpcSeconds = new Histogram({
      name: `${p}agent_rpc_duration_seconds`,
      help: 'Agent RPCs made by the coordinator (each attempt), by agent, method and outcome.',
      labelNames: ['agent', 'method', 'outcome'],
      buckets: AGENT_RPC_BUCKETS,
      registers,
    });
    this.rpcErrors = new Counter({
      name: `${p}agent_rpc_errors_total`,
      help: 'Failed agent RPC attempts by agent, method and reason.',
      labelNames: ['agent', 'method', 'reason'],
      registers,
    });
    this.bytes = new Counter({
      name: `${p}bytes_moved_total`,
      help: 'Bytes the agents reported moving for driver calls, by path kind.',
      labelNames: ['path_kind'],
      registers,
    });
  }

  /** Starts timing a driver call; `known`: whether one-storage implements kind/driver/action. */
  driverCallStarted(kind: string, driver: string, action: string, known: boolean): DriverCallTimer {
    const labels = known
      ? { kind, driver, action }
      : { kind: UNKNOWN_LABEL, driver: UNKNOWN_LABEL, action: UNKNOWN_LABEL };
    const entry = { startedMs: this.now() };
    this.running.add(entry);
    this.inFlight.inc({ kind: labels.kind });
    let ended = false;
    return {
      end: (outcome: Outcome, reason?: string) => {
        if (ended) return;
        ended = true;
        this.running.delete(entry);
        this.inFlight.dec({ kind: labels.kind });
        this.calls.inc({ ...labels, outcome });
        this.callSeconds.observe({ ...labels, outcome }, (this.now() - entry.startedMs) / MS_PER_S);
        if (outcome === 'failure') this.errors.inc({ ...labels, reason: reason ?? UNKNOWN_LABEL });
      },
    };
  }

  /** One agent RPC attempt: `reason` undefined on success; `bytes` as AgentOps counts them. */
  agentCall(agent: string, method: AgentMethod, startedMs: number, reason?: string, bytes = 0): void {
    const outcome: Outcome = reason === undefined ? 'success' : 'failure';
    this.rpcSeconds.observe({ agent, method, outcome }, (this.now() - startedMs) / MS_PER_S);
    if (reason !== undefined) this.rpcErrors.inc({ agent, method, reason });
    if (bytes > 0) this.bytes.inc({ path_kind: bytesPathKind(method) }, bytes);
  }
}
