import { parseArgs } from 'node:util';
import { StorageError, oneLine } from '../errors.js';
import type { Logger } from '../log.js';

/** Exit codes of both daemons: 2 for a bad command line or configuration (fix it and rerun), 1 otherwise. */
export const EXIT_BAD_CONFIG = 2;
export const EXIT_FAILURE = 1;

export interface DaemonCommandLine {
  /** The program name every message starts with, e.g. "one-storage-agent". */
  program: string;
  /** The text --help prints; its first line is the one-line usage. */
  usage: string;
}

/**
 * The one command line of both daemons, `--config FILE` (or --help), parsed with node:util
 * parseArgs. Returns the config file, or undefined after printing the help. An unknown option, a
 * missing value or a missing --config exits 2 with one line on stderr ending with the usage line.
 */
export function parseDaemonCommandLine(cli: DaemonCommandLine, args: string[]): string | undefined {
  const usageLine = cli.usage.split('\n')[0] ?? '';
  let values: { config?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args,
      options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    return exitDaemon(cli, EXIT_BAD_CONFIG, `${oneLine((err as Error).message)} (${usageLine})`);
  }
  if (values.help) {
    process.stdout.write(`${cli.usage}\n`);
    return undefined;
  }
  if (!values.config) return exitDaemon(cli, EXIT_BAD_CONFIG, `--config FILE is required (${usageLine})`);
  return values.config;
}

/**
 * The daemon's configuration: `--config FILE` parsed as parseDaemonCommandLine does, then loaded by
 * `load`. Undefined after --help; a file that cannot be loaded or is not valid exits 2 with its
 * reason on one line.
 */
export function loadDaemonConfig<T>(
  cli: DaemonCommandLine,
  args: string[],
  load: (file: string) => T,
): T | undefined {
  const file = parseDaemonCommandLine(cli, args);
  if (file === undefined) return undefined;
  try {
    return load(file);
  } catch (err) {
    return exitDaemon(cli, EXIT_BAD_CONFIG, err instanceof Error ? err.message : String(err));
  }
}

/** How long a daemon may take to stop after SIGTERM before it exits anyway (below systemd's 90 s). */
export const STOP_DEADLINE_MS = 20_000;

/**
 * SIGINT and SIGTERM close the daemon, then exit 0 (1 when closing fails or outlasts
 * STOP_DEADLINE_MS). Each is handled once: a second signal gets the default action, so an impatient
 * operator can still kill a stuck shutdown.
 */
export function stopOnSignals(logger: Logger, close: () => Promise<void>): void {
  const stop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'stopping');
    // A stop that hangs (a peer that never answers) must not outlive the service manager's patience.
    setTimeout(() => {
      logger.error({ signal, afterMs: STOP_DEADLINE_MS }, 'did not stop in time; exiting');
      process.exit(EXIT_FAILURE);
    }, STOP_DEADLINE_MS).unref();
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'did not stop cleanly');
        process.exit(EXIT_FAILURE);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** One line on stderr, starting with the program name (oned and systemd show the first line), then exit. */
export function exitDaemon(cli: DaemonCommandLine, code: number, message: string): never {
  process.stderr.write(`${cli.program}: ${oneLine(message)}\n`);
  process.exit(code);
}

/**
 * Exits for an error thrown while starting, with code 2 when the cause is the configuration (a
 * StorageError CONFIG_INVALID: TLS files that cannot be read, a certificate with the wrong role, a
 * user that does not exist...) and 1 for anything else, `what` prefixed to its message then.
 */
export function failToStart(cli: DaemonCommandLine, err: unknown, what = ''): never {
  const bad = err instanceof StorageError && err.reason === 'CONFIG_INVALID';
  const message = err instanceof Error ? err.message : String(err);
  return exitDaemon(cli, bad ? EXIT_BAD_CONFIG : EXIT_FAILURE, bad ? message : `${what}${message}`);
}
