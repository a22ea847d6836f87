import { keepaliveOptions } from '../../common/src/config/keepalive.js';
import { startEvents } from './libvirt/virsh-events.js';
import { VIRSH } from './libvirt/virsh.js';
import * as grpc from '@grpc/grpc-js';
import { StorageError, oneLine } from '../../common/src/errors.js';
import type { Logger } from '../../common/src/log.js';
import { loadTls, serverCredentials, type TlsMaterial } from '../../common/src/tls.js';
import { daemonRegistry } from '../../common/src/metrics/daemon-registry.js';
import { startMetricsServer, type MetricsServer } from '../../common/src/metrics/metrics-server.js';
import { AgentServiceService } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { checkAgentCertificate } from './check-certificate.js';
import type { AgentConfig } from './config.js';
import { healthSources } from './health/health-sources.js';
import { JobRegistry } from './jobs/job-registry.js';
import { AgentMetrics } from './metrics/agent-metrics.js';
import { metricsInterceptor } from './metrics/metrics-interceptor.js';
import { PathLocks } from './locks/path-locks.js';
import { Monitoring } from './monitor/monitoring.js';
import { Roots } from './paths/roots.js';
import { createAgentService } from './rpc/agent-service.js';
import type { AgentContext } from './rpc/context.js';
import { ExportService } from './export/export-service.js';
import { coordinatorOnlyInterceptor } from './rpc/coordinator-only.js';
import { loggingInterceptor } from './rpc/logging-interceptor.js';
import { trustedCas } from './import/trusted-cas.js';
import { copyLocal } from './transfer/local-copy.js';
import { TransferService } from './transfer/transfer-service.js';
import { packageVersion } from '../../common/src/version.js';

/** In-flight calls get this long to finish on shutdown before they are cut off. */
export const SHUTDOWN_GRACE_MS = 10_000;

export interface RunningAgent {
  /** The gRPC port actually bound (useful with port 0). */
  port: number;
  /** host:port other agents dial for the data path. */
  dataAddress: string;
  /** host:port the export listener bound, when `export` is configured. */
  exportAddress?: string;
  /** host:port the /metrics listener bound, when `metrics` is configured. */
  metricsAddress?: string;
  /** Stops accepting calls, lets running ones finish (up to SHUTDOWN_GRACE_MS), closes the data path. */
  close(): Promise<void>;
  /** Sends the monitoring messages now (push mode; SIGUSR1). */
  monitorNow(): Promise<void>;
}

/** What a test may replace; the daemon uses the defaults. */
export interface AgentOptions {
  /** Clock in ms since the epoch, for export expiry. */
  now?: () => number;
}

/**
 * Builds and starts one agent: its roots, the data path, the export listener when configured, and
 * the gRPC server, which requires a client certificate from the cloud's CA on every connection and
 * the coordinator role on every call.
 */
export async function startAgent(
  config: AgentConfig,
  logger: Logger,
  tls: TlsMaterial = loadTls(config.tls, config.source),
  options: AgentOptions = {},
): Promise<RunningAgent> {
  checkAgentCertificate(tls, config, logger);
  const roots = new Roots(config.name, config.roots);
  // Temporaries in use (receives, export copies): the stale-temporary sweeps leave them alone.
  const activeTemps = new Set<string>();
  const jobs = new JobRegistry();
  const registry = config.metrics ? daemonRegistry(tls.cert) : undefined;
  const metrics = registry ? new AgentMetrics(registry, () => jobs.size) : undefined;
  const transfer = new TransferService({
    name: config.name,
    tls,
    listen: config.data.listen,
    ...(config.data.advertise !== undefined ? { advertiseHost: config.data.advertise } : {}),
    resolve: (onedPath: string, field: string) => roots.resolve(onedPath, field),
    realRoots: () => roots.realRoots(),
    logger: logger.child({ component: 'transfer' }),
    plaintextData: config.data.encryption === 'none',
    rateLimitBytesPerSecond: config.data.rateLimitBytesPerSecond,
    idleTimeoutMs: config.data.idleTimeoutMs,
    activeTemps,
    ...(metrics ? { onSent: (bytes: number) => metrics.moved('transfer_sent', bytes) } : {}),
  });
  await transfer.start();
  const exports = config.export
    ? new ExportService({
        name: config.name,
        tls,
        config: config.export,
        logger: logger.child({ component: 'export' }),
        activeTemps,
        ...(options.now ? { now: options.now } : {}),
        ...(metrics ? { onServed: (bytes: number) => metrics.moved('export', bytes) } : {}),
      })
    : undefined;
  const monitoring = new Monitoring(config, roots, logger.child({ component: 'monitor' }), metrics);
  let metricsServer: MetricsServer | undefined;
  const stopAll = async (): Promise<void> => {
    await metricsServer?.close();
    await monitoring.close();
    await exports?.close();
    await transfer.close();
  };
  try {
    await exports?.start().catch((err: unknown) => {
      throw new StorageError(
        'INTERNAL',
        `agent ${config.name}: cannot listen on export.listen ${config.export?.listen ?? ''}: ${describe(err)}`,
        { cause: err },
      );
    });
    await monitoring.start();
  } catch (err) {
    await stopAll();
    throw err instanceof StorageError
      ? err
      : new StorageError('INTERNAL', `agent ${config.name}: cannot start monitoring: ${describe(err)}`, {
          cause: err,
        });
  }
  // Block jobs end by libvirt's events (block-job-wait.ts): the stream is listening before any job.
  if (config.libvirt.enabled) startEvents(VIRSH, config.libvirt.uri);
  const agent: AgentContext = {
    name: config.name,
    version: packageVersion(),
    roots,
    locks: new PathLocks(),
    dataPath: transfer,
    copyLocal,
    libvirtUri: config.libvirt.uri,
    monitoring,
    ...(exports ? { exports } : {}),
    imports: { dirs: config.imports.dirs, ca: trustedCas(tls.ca) },
    jobs,
    health: healthSources(config, tls, monitoring.deliveries, () => transfer.dataAddress()),
  };
  // Logging first, so it also records the calls the coordinator-only check refuses.
  const server = new grpc.Server({
    // A call whose coordinator vanished without a reset (a cut link) is cancelled once the
    // keepalive pings go unanswered, rather than running on (common/src/config/keepalive.ts).
    ...keepaliveOptions(config.keepalive),
    interceptors: [
      loggingInterceptor(logger),
      ...(metrics ? [metricsInterceptor(metrics)] : []),
      coordinatorOnlyInterceptor(config.name),
    ],
  });
  server.addService(AgentServiceService, createAgentService(agent, logger));
  let port: number;
  try {
    port = await bind(server, config.listen, serverCredentials(tls));
  } catch (err) {
    await stopAll();
    throw new StorageError(
      'INTERNAL',
      `agent ${config.name}: cannot listen on ${config.listen}: ${describe(err)}`,
      {
        cause: err,
      },
    );
  }
  if (config.metrics && registry) {
    try {
      metricsServer = await startMetricsServer(config.metrics, registry, tls, logger);
    } catch (err) {
      server.forceShutdown();
      await stopAll();
      throw err;
    }
  }
  let closing: Promise<void> | undefined;
  return {
    port,
    dataAddress: transfer.dataAddress(),
    ...(exports ? { exportAddress: exports.address() } : {}),
    ...(metricsServer ? { metricsAddress: metricsServer.address } : {}),
    close: () => (closing ??= shutdown(server).then(stopAll)),
    monitorNow: () => monitoring.runNow(),
  };
}

function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

function shutdown(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => {
    // After the grace, calls still running are cut off; and the stop does not wait for a client
    // that no longer answers (a front-end behind a firewall keeps its HTTP/2 session half open, and
    // tryShutdown's callback would wait for it until systemd kills the agent after 90 s).
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, SHUTDOWN_GRACE_MS);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

function describe(err: unknown): string {
  return oneLine(err instanceof Error ? err.message : String(err));
}
