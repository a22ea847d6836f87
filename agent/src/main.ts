#!/usr/bin/env node
import { failToStart, loadDaemonConfig, stopOnSignals } from '../../common/src/config/daemon-command-line.js';
import { createLogger } from '../../common/src/log.js';
import { loadAgentConfig } from './config.js';
import { AGENT_UMASK } from './files/modes.js';
import { enterAgentUser } from './privileges/enter-agent-user.js';
import { startAgent } from './server.js';

const PROGRAM = 'one-storage-agent';
const USAGE = `usage: ${PROGRAM} --config FILE

Runs the one-storage agent of this node: the gRPC service (mutual TLS) the coordinator calls, the
data path other agents pull from and, with export set, the https listener marketplaces download
exported images from; with metrics set, Prometheus GET /metrics. FILE is YAML or JSON with name,
listen, roots and tls (required) and user, group, data, monitord, monitor, libvirt, export,
imports, metrics and log (optional). Started as root with user set, it reads its TLS files and
then runs as that user (oneadmin). SIGUSR1 sends the monitoring messages at once (push mode).`;
const CLI = { program: PROGRAM, usage: USAGE };

async function main(): Promise<void> {
  // Before anything is created: what the agent and its tools create is never group-writable or
  // world-readable (agent/src/files/modes.ts).
  process.umask(AGENT_UMASK);
  const config = loadDaemonConfig(CLI, process.argv.slice(2), loadAgentConfig);
  if (config === undefined) return;
  const logger = createLogger(PROGRAM, config.log.level);
  let agent: Awaited<ReturnType<typeof startAgent>>;
  try {
    // Root reads the TLS key, then the agent becomes config.user before it listens.
    agent = await startAgent(config, logger, await enterAgentUser(config, logger));
  } catch (err) {
    // Unreadable TLS files, a certificate for another name or a wrong user are config errors too.
    failToStart(CLI, err);
  }
  logger.info(
    {
      name: config.name,
      port: agent.port,
      dataAddress: agent.dataAddress,
      exportAddress: agent.exportAddress,
    },
    'agent listening',
  );

  stopOnSignals(logger, () => agent.close());
  // As monitord_client.rb does for SYSTEM_HOST: SIGUSR1 sends the monitoring messages now.
  process.on('SIGUSR1', () => {
    agent.monitorNow().catch((err: unknown) => logger.warn({ err }, 'monitoring run failed'));
  });
}

await main();
