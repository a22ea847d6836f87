#!/usr/bin/env node
import {
  EXIT_BAD_CONFIG,
  EXIT_FAILURE,
  exitDaemon,
  failToStart,
  parseDaemonCommandLine,
} from '../../common/src/config/daemon-command-line.js';
import { createLogger } from '../../common/src/log.js';
import { loadCoordinatorConfig, type CoordinatorConfig } from './config.js';
import { startCoordinator } from './coordinator.js';

const PROGRAM = 'one-storage-coordinator';
const USAGE = `usage: ${PROGRAM} --config FILE

Runs the one-storage coordinator of the front-end: the shims oned starts talk to it over its UNIX
socket, and it calls the agents (gRPC, mutual TLS) to carry out each driver action. FILE is YAML or
JSON with socket, journal, frontend, agents, oned and tls (required) and socketMode, socketGroup,
frontendAliases, datastoreLocation, remotesDir, deadlines, monitord and log (optional).`;
const CLI = { program: PROGRAM, usage: USAGE };

async function main(): Promise<void> {
  const file = parseDaemonCommandLine(CLI, process.argv.slice(2));
  if (file === undefined) return;
  let config: CoordinatorConfig;
  try {
    config = loadCoordinatorConfig(file);
  } catch (err) {
    exitDaemon(CLI, EXIT_BAD_CONFIG, err instanceof Error ? err.message : String(err));
  }
  const logger = createLogger(PROGRAM, config.log.level);
  let running: Awaited<ReturnType<typeof startCoordinator>>;
  try {
    running = await startCoordinator(config, logger);
  } catch (err) {
    // Unreadable TLS files or a certificate without the coordinator role are config errors too.
    failToStart(CLI, err, 'cannot start: ');
  }
  const stop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'stopping');
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(EXIT_FAILURE);
      },
    );
  };
  // once: a second signal gets the default action, so an impatient operator can still kill a stuck shutdown.
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

await main();
