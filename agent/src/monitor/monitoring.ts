import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { StorageError } from '../../../common/src/errors.js';
import type { Logger } from '../../../common/src/log.js';
import { MonitordSender } from '../../../common/src/monitord/monitord-sender.js';
import type { AgentConfig } from '../config.js';
import type { Roots } from '../paths/roots.js';
import { DiskMonitor } from './disk-monitor.js';
import { DEFAULT_MAX_WATCHES } from './dir-watches.js';
import { LocalEndpoint, type Query } from './local-endpoint.js';
import { MonitorPusher, type MonitorMetrics } from './monitor-pusher.js';
import { MonitordDeliveries } from './monitord-deliveries.js';

/**
 * The agent's monitoring, built from its config: the disk monitor (always: the coordinator's
 * MonitorDatastore uses it), and with a `monitor` section the local endpoint for monitor_ds and the
 * probes, plus in push mode the pusher. `monitor.report` is the one switch between push and probes.
 */
export class Monitoring {
  readonly disks: DiskMonitor;
  /** The last push to monitord and the last failure (Health). */
  readonly deliveries = new MonitordDeliveries();
  private endpoint: LocalEndpoint | undefined;
  private pusher: MonitorPusher | undefined;
  private hostId: number | undefined;

  constructor(
    private readonly config: Pick<AgentConfig, 'source' | 'roots' | 'monitor' | 'monitord'>,
    private readonly roots: Roots,
    private readonly logger: Logger,
    private readonly metrics?: MonitorMetrics,
  ) {
    const m = config.monitor;
    this.disks = new DiskMonitor(config.roots, logger, m?.fullRefreshEvery, {
      enabled: m?.watch ?? true,
      max: m?.maxWatches ?? DEFAULT_MAX_WATCHES,
    });
    this.hostId = config.monitor?.hostId;
    metrics?.monitorCache?.(() => this.disks.cacheSize());
  }

  async start(): Promise<void> {
    const m = this.config.monitor;
    if (!m) return;
    if (m.report === 'push' && this.config.monitord) {
      const publicKey = this.config.monitord.publicKey
        ? readPublicKey(this.config.monitord.publicKey, this.config.source)
        : undefined;
      this.pusher = new MonitorPusher({
        monitor: this.disks,
        sender: new MonitordSender({
          address: this.config.monitord.address,
          port: this.config.monitord.port,
        }),
        schedules: m.schedules,
        hostId: m.hostId,
        ...(publicKey ? { publicKey } : {}),
        logger: this.logger,
        ...(this.metrics ? { metrics: this.metrics } : {}),
        deliveries: this.deliveries,
      });
    }
    this.endpoint = new LocalEndpoint(m.socket, m.socketMode, (q) => this.answer(q), this.logger);
    await this.endpoint.start();
    this.pusher?.start();
    this.logger.info({ report: m.report, socket: m.socket, hostId: this.hostId }, 'monitoring started');
  }

  /** SetMonitorHost: the coordinator's id for this host; one from the config wins. */
  setHostId(id: number): number {
    if (this.config.monitor?.hostId === undefined) this.hostId = id;
    return this.pusher?.setHostId(id) ?? this.hostId ?? id;
  }

  /** Runs both pushes now (SIGUSR1); nothing in probes mode. */
  async runNow(): Promise<void> {
    await this.pusher?.runNow();
  }

  async close(): Promise<void> {
    await this.pusher?.stop();
    await this.endpoint?.close();
    this.disks.close();
  }

  private async answer(query: Query): Promise<string[]> {
    // Push mode: the agent itself reports; the probes and monitor_ds must not report it again.
    if (this.config.monitor?.report === 'push') return [];
    if (query.kind === 'system') return this.disks.systemLines();
    if (query.path === undefined) return this.disks.allVmLines();
    return this.disks.vmLines(await this.roots.resolve(query.path, 'datastore path'));
  }
}

function readPublicKey(file: string, source: string): KeyObject {
  try {
    const key = createPublicKey(readFileSync(file));
    if (key.asymmetricKeyType !== 'rsa') throw new Error(`a ${key.asymmetricKeyType} key, not RSA`);
    return key;
  } catch (err) {
    throw new StorageError(
      'CONFIG_INVALID',
      `config ${source}: monitord.publicKey: ${file}: ${(err as Error).message}`,
    );
  }
}
