import type { KeyObject } from 'node:crypto';
import type { CacheSize } from './datastore-scanner.js';
import { schedule, type ScheduledTask } from 'node-cron';
import type { Logger } from '../../../common/src/log.js';
import { MonitordSender } from '../../../common/src/monitord/monitord-sender.js';
import { MessageEncoder, MonitorMessageType } from '../../../common/src/monitord/wire.js';
import type { DiskMonitor } from './disk-monitor.js';
import type { MonitordDeliveries } from './monitord-deliveries.js';

/** monitord_client.rb's delays after a failed send (docs/opennebula/monitoring.md#host-side-client), in seconds; the last one repeats. */
export const RETRY_DELAYS_S = [1, 1, 1, 2, 4, 8, 8, 16, 32, 64] as const;
const MS_PER_S = 1000;

type Kind = 'vm' | 'system';

/** Where a push run is reported (agent/src/metrics/agent-metrics.ts): its duration and datagrams. */
export interface MonitorMetrics {
  monitorCycle(
    kind: Kind,
    type: string,
    result: 'success' | 'failure',
    seconds: number,
    messages: number,
  ): void;
  /** The disk monitor's cache size, read when metrics are scraped. */
  monitorCache?(size: () => CacheSize): void;
}

export interface PusherOptions {
  monitor: DiskMonitor;
  sender: MonitordSender;
  schedules: { vm: string; system: string };
  /** The host id from the agent's config; undefined until the coordinator sends one. */
  hostId: number | undefined;
  publicKey?: KeyObject;
  logger: Logger;
  metrics?: MonitorMetrics;
  /** Where the last delivery and the last failure are recorded (Health). */
  deliveries?: MonitordDeliveries;
  /** Test hook: scales RETRY_DELAYS_S. */
  retryScale?: number;
}

/**
 * Pushes MONITOR_VM and SYSTEM_HOST to monitord on node-cron schedules. A failed send is retried
 * after OpenNebula's client delays (1,1,1,2,4,8,8,16,32,64 s) and the scheduled runs of that kind
 * wait for the retry, so an unreachable monitord costs a datagram now and then, never the agent.
 */
export class MonitorPusher {
  private readonly tasks: ScheduledTask[] = [];
  private readonly failures: Record<Kind, number> = { vm: 0, system: 0 };
  private readonly retries: Record<Kind, NodeJS.Timeout | undefined> = { vm: undefined, system: undefined };
  private readonly running: Record<Kind, Promise<void> | undefined> = { vm: undefined, system: undefined };
  /** Per kind: a steady cycle compresses only the parts whose lines changed. */
  private readonly encoders: Record<Kind, MessageEncoder> = {
    vm: new MessageEncoder(),
    system: new MessageEncoder(),
  };
  private hostId: number | undefined;
  private warnedNoHost = false;
  private stopped = false;

  constructor(private readonly opts: PusherOptions) {
    this.hostId = opts.hostId;
  }

  start(): void {
    this.tasks.push(
      schedule(this.opts.schedules.vm, () => this.tick('vm'), { name: 'monitor-vm', noOverlap: true }),
      schedule(this.opts.schedules.system, () => this.tick('system'), {
        name: 'monitor-system',
        noOverlap: true,
      }),
    );
  }

  /** The coordinator's host id; one from the agent's config wins. Returns the id in use. */
  setHostId(id: number): number {
    if (this.opts.hostId === undefined) this.hostId = id;
    return this.hostId ?? id;
  }

  currentHostId(): number | undefined {
    return this.hostId;
  }

  /** Both kinds now (SIGUSR1, as monitord_client.rb forces a SYSTEM_HOST run). */
  async runNow(): Promise<void> {
    await Promise.all([this.tick('vm'), this.tick('system')]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.tasks) await t.destroy();
    for (const k of ['vm', 'system'] as const) clearTimeout(this.retries[k]);
    await Promise.all([this.running.vm, this.running.system]);
    await this.opts.sender.close();
  }

  private tick(kind: Kind): Promise<void> {
    // A pending retry owns the next attempt; a run in progress is not doubled.
    if (this.stopped || this.retries[kind] || this.running[kind]) return Promise.resolve();
    const run = this.push(kind).finally(() => {
      this.running[kind] = undefined;
    });
    this.running[kind] = run;
    return run;
  }

  private async push(kind: Kind): Promise<void> {
    const hostId = this.hostId;
    if (hostId === undefined) {
      this.opts.deliveries?.failed('no host id yet (monitor.hostId or the coordinator): nothing sent');
      if (!this.warnedNoHost) {
        this.opts.logger.warn('monitoring: no host id yet (monitor.hostId or the coordinator); not sending');
        this.warnedNoHost = true;
      }
      return;
    }
    const started = performance.now();
    const type = kind === 'vm' ? MonitorMessageType.MonitorVm : MonitorMessageType.SystemHost;
    const report = (result: 'success' | 'failure', messages: number): void =>
      this.opts.metrics?.monitorCycle(kind, type, result, (performance.now() - started) / MS_PER_S, messages);
    let encoded = 0;
    try {
      const lines =
        kind === 'vm' ? await this.opts.monitor.allVmLines() : await this.opts.monitor.systemLines();
      const header = {
        type,
        status: 'SUCCESS' as const,
        hostId,
        timestamp: Math.floor(Date.now() / MS_PER_S),
      };
      const { messages, tooLarge } = this.encoders[kind].encode(
        header,
        lines,
        this.opts.publicKey ? { publicKey: this.opts.publicKey } : {},
      );
      for (const line of tooLarge) {
        this.opts.logger.error(
          { line: line.slice(0, 80) },
          'monitoring: a line alone exceeds 64 KiB; not sent',
        );
      }
      encoded = messages.length;
      await this.opts.sender.send(messages);
      report('success', encoded);
      // Nothing to say (no VM on this host) sends nothing: not a delivery.
      if (messages.length > 0) this.opts.deliveries?.delivered(Date.now());
      if (this.failures[kind] > 0) this.opts.logger.info({ kind }, 'monitoring: monitord reachable again');
      this.failures[kind] = 0;
    } catch (err) {
      report('failure', encoded);
      const delayS = RETRY_DELAYS_S[Math.min(this.failures[kind], RETRY_DELAYS_S.length - 1)] as number;
      this.failures[kind]++;
      this.opts.deliveries?.failed((err as Error).message);
      this.opts.logger.warn(
        { kind, attempt: this.failures[kind], retryInS: delayS, err: (err as Error).message },
        'monitoring: send failed; retrying',
      );
      if (this.stopped) return;
      this.retries[kind] = setTimeout(
        () => {
          this.retries[kind] = undefined;
          void this.tick(kind);
        },
        delayS * MS_PER_S * (this.opts.retryScale ?? 1),
      );
      this.retries[kind].unref();
    }
  }
}
