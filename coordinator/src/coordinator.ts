import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../../common/src/log.js';
import { loadTls } from '../../common/src/tls.js';
import { daemonRegistry } from '../../common/src/metrics/daemon-registry.js';
import { startMetricsServer } from '../../common/src/metrics/metrics-server.js';
import { distributeHostIds } from './agents/host-ids.js';
import { AgentRegistry } from './agents/agent-registry.js';
import { checkCoordinatorCertificate } from './check-certificate.js';
import type { CoordinatorConfig } from './config.js';
import { packageVersion } from '../../common/src/version.js';
import { handleDriverCall } from './handle-driver-call.js';
import { CONTROL_KIND, handleControlRequest } from './jobs/control-request.js';
import { startProgressPoller } from './jobs/progress-poller.js';
import { recoverUnfinished } from './jobs/recover-unfinished.js';
import { RunningCalls } from './jobs/running-calls.js';
import { Journal } from './journal/journal.js';
import { CoordinatorMetrics } from './metrics/coordinator-metrics.js';
import { readOneAuth } from './oned/one-auth.js';
import { OnedClient } from './oned/oned-client.js';
import { startShimServer } from './shim-server/shim-server.js';
import { resolveSocketGroup } from './shim-server/socket-group.js';

export interface RunningCoordinator {
  close(): Promise<void>;
}

/** Builds the coordinator's dependencies and starts listening for shims. */
export async function startCoordinator(
  config: Readonly<CoordinatorConfig>,
  logger: Logger,
): Promise<RunningCoordinator> {
  const socketGroup = await resolveSocketGroup(config.socketGroup, config.source);
  const session = await readOneAuth(config.oned.auth);
  const tls = loadTls(config.tls, config.source);
  checkCoordinatorCertificate(tls, config);
  mkdirSync(dirname(config.journal), { recursive: true });
  const journal = new Journal(config.journal, { redact: [session, session.slice(session.indexOf(':') + 1)] });
  // What an earlier run left running, read before any new call is journaled; a new call for one of
  // these VMs waits until recovery has resolved them (an oned retry must find a consistent state).
  const leftovers = journal.unfinished();
  const leftoverVms = new Set(leftovers.flatMap((c) => (c.vmId === undefined ? [] : [c.vmId])));
  let recovered: () => void = () => undefined;
  const recoveryDone = new Promise<void>((resolve) => (recovered = resolve));
  const oned = new OnedClient({
    endpoint: config.oned.endpoint,
    session,
    deadlineMs: config.oned.deadlineMs,
  });
  const agents = new AgentRegistry(
    config.agents,
    tls,
    config.frontend,
    config.frontendAliases,
    config.keepalive,
  );
  mkdirSync(dirname(config.socket), { recursive: true });
  const calls = new RunningCalls(journal);
  const registry = config.metrics ? daemonRegistry(tls.cert) : undefined;
  const metrics = registry ? new CoordinatorMetrics(registry) : undefined;
  const deps = {
    config,
    agents,
    oned,
    journal,
    calls,
    logger,
    afterRecoveryOf: (vmId: number) => (leftoverVms.has(vmId) ? recoveryDone : undefined),
    ...(metrics ? { metrics } : {}),
  };
  const server = await startShimServer({
    socketPath: config.socket,
    mode: config.socketMode,
    group: socketGroup,
    handler: (req, log, signal) =>
      req.kind === CONTROL_KIND
        ? Promise.resolve(handleControlRequest(req, calls, packageVersion(), logger))
        : handleDriverCall(deps, req, log, signal),
    logger,
  });
  const progress = startProgressPoller(
    calls,
    agents,
    config.progress,
    logger.child({ component: 'progress' }),
  );
  const metricsServer =
    config.metrics && registry
      ? await startMetricsServer(config.metrics, registry, tls, logger).catch(async (err: unknown) => {
          // A port already taken is a start-up failure: release what was opened, then say why.
          await server.close();
          agents.close();
          oned.close();
          journal.close();
          throw err;
        })
      : undefined;
  logger.info(
    { socket: config.socket, agents: [...config.agents.keys()], oned: config.oned.endpoint },
    'coordinator listening',
  );
  const hostIds = distributeHostIds(agents, config.agents, logger);
  // Calls an earlier run left running: in the background, so oned's calls are served meanwhile.
  const recovery = recoverUnfinished(journal, agents, config.deadlines.controlMs, logger, leftovers)
    .catch((err: unknown) => logger.error({ err }, 'recovery of unfinished calls failed'))
    .finally(() => recovered());
  return {
    async close() {
      await recovery;
      await hostIds?.destroy();
      await metricsServer?.close();
      await server.close();
      await progress.stop();
      agents.close();
      oned.close();
      journal.close();
    },
  };
}
