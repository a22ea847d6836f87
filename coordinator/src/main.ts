#!/usr/bin/env node
import { StorageError } from '../../common/src/errors.js';
import { createLogger } from '../../common/src/log.js';
import { loadCoordinatorConfig } from './config.js';
import { startCoordinator } from './coordinator.js';

const USAGE = 'usage: one-storage-coordinator --config FILE';
const EXIT_BAD_CONFIG = 2;

async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const i = argv.indexOf('--config');
  const file = i >= 0 ? argv[i + 1] : undefined;
  if (!file || argv.length !== 2) {
    console.error(USAGE);
    process.exit(EXIT_BAD_CONFIG);
  }
  let config;
  try {
    config = loadCoordinatorConfig(file);
  } catch (err) {
    console.error(err instanceof StorageError ? err.message : String(err));
    process.exit(EXIT_BAD_CONFIG);
  }
  const logger = createLogger('one-storage-coordinator', config.log.level);
  let running;
  try {
    running = await startCoordinator(config, logger);
  } catch (err) {
    console.error(
      `one-storage-coordinator: cannot start: ${err instanceof Error ? err.message : String(err)}`,
    );
    process.exit(1);
  }
  const stop = (signal: string): void => {
    logger.info({ signal }, 'stopping');
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

void main(process.argv.slice(2));
