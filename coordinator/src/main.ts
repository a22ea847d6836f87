#!/usr/bin/env node
import { failToStart, loadDaemonConfig, stopOnSignals } from '../../common/src/config/daemon-command-line.js';
import { createLogger } from '../../common/src/log.js';
import { loadCoordinatorConfig } from './config.js';
import { startCoordinator } from './coordinator.js';

const PROGRAM = 'one-storage-coordinator';
const USAGE = `usage: ${PROGRAM} --config FILE

Runs the one-storage coordinator of the front-end: the shims oned starts talk to it over its UNIX
socket, and it calls the agents (gRPC, mutual TLS) to carry out each driver action. FILE is YAML or
JSON with socket, journal, frontend, agents, oned and tls (required) and socketMode, socketGroup,
frontendAliases, datastoreLocation, remotesDir, deadlines, monitord, imageDatastore, metrics and log
(optional).`;
const CLI = { program: PROGRAM, usage: USAGE };

async function main(): Promise<void> {
  const config = loadDaemonConfig(CLI, process.argv.slice(2), loadCoordinatorConfig);
  if (config === undefined) return;
  const logger = createLogger(PROGRAM, config.log.level);
  let running: Awaited<ReturnType<typeof startCoordinator>>;
  try {
    running = await startCoordinator(config, logger);
  } catch (err) {
    // Unreadable TLS files or a certificate without the coordinator role are config errors too.
    failToStart(CLI, err, 'cannot start: ');
  }
  stopOnSignals(logger, () => running.close());
}

await main();
