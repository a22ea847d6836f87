#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { StorageError } from '../../common/src/errors.js';
import { createLogger } from '../../common/src/log.js';
import { loadAgentConfig, type AgentConfig } from './config.js';
import { AGENT_UMASK } from './files/modes.js';
import { enterAgentUser } from './privileges/enter-agent-user.js';
import { startAgent } from './server.js';

const PROGRAM = 'one-storage-agent';
const USAGE = `usage: ${PROGRAM} --config FILE

Runs the one-storage agent of this node: the gRPC service (mutual TLS) the coordinator calls and
the data path other agents pull from. FILE is YAML or JSON with name, listen, roots and tls
(required) and user, group, data, monitord, monitor and log (optional). Started as root with user
set, it reads its TLS files and then runs as that user (oneadmin). SIGUSR1 sends the monitoring
messages at once (push mode).`;
/** Exit codes: 2 for a wrong command line or config (fix and rerun), 1 for a failure to start. */
const EXIT_USAGE = 2;
const EXIT_FAILURE = 1;

async function main(): Promise<void> {
  // Before anything is created: what the agent and its tools create is never group-writable or
  // world-readable (agent/src/files/modes.ts).
  process.umask(AGENT_UMASK);
  let values: { config?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    fail(EXIT_USAGE, `${(err as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!values.config) fail(EXIT_USAGE, `--config FILE is required\n${USAGE}`);

  let config: AgentConfig;
  try {
    config = loadAgentConfig(values.config);
  } catch (err) {
    fail(EXIT_USAGE, (err as Error).message);
  }
  const logger = createLogger(PROGRAM, config.log.level);
  let agent: Awaited<ReturnType<typeof startAgent>>;
  try {
    // Root reads the TLS key, then the agent becomes config.user before it listens.
    agent = await startAgent(config, logger, await enterAgentUser(config, logger));
  } catch (err) {
    // Unreadable TLS files, a certificate for another name or a wrong user are config errors too.
    const code = err instanceof StorageError && err.reason === 'CONFIG_INVALID' ? EXIT_USAGE : EXIT_FAILURE;
    fail(code, err instanceof Error ? err.message : String(err));
  }
  logger.info({ name: config.name, port: agent.port, dataAddress: agent.dataAddress }, 'agent listening');

  const stop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'agent stopping');
    agent.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'agent did not stop cleanly');
        process.exit(EXIT_FAILURE);
      },
    );
  };
  // once: a second signal gets the default action, so an impatient operator can still kill a stuck shutdown.
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // As monitord_client.rb does for SYSTEM_HOST: SIGUSR1 sends the monitoring messages now.
  process.on('SIGUSR1', () => {
    agent.monitorNow().catch((err: unknown) => logger.warn({ err }, 'monitoring run failed'));
  });
}

/** One line on stderr (oned and systemd show the first line), then exit. */
function fail(code: number, message: string): never {
  process.stderr.write(`${PROGRAM}: ${message}\n`);
  process.exit(code);
}

await main();
