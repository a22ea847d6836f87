import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { EXPORT_PATH_PREFIX } from '../../../common/src/export-tokens.js';
import type { Logger } from '../../../common/src/log.js';
import type { TlsMaterial } from '../../../common/src/tls.js';
import type { ExportConfig } from '../config.js';
import { type ExportEntry, type ExportedFile, ExportRegistry } from './export-registry.js';
import { ExportServer } from './export-server.js';
import { receiveTempName } from '../transfer/stale-temps.js';
import type { TempHold } from './prepare-export.js';

/** How often expired exports are swept when nobody asks for one (lookups sweep too). */
export const EXPORT_SWEEP_INTERVAL_MS = 60_000;
/** Listen hosts that mean "every address": URLs then name the agent instead. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '[::]', '::']);

export interface ExportServiceOptions {
  /** This agent's name: the URL host behind a wildcard listen, and the owner in temporary names. */
  name: string;
  tls: TlsMaterial;
  config: ExportConfig;
  logger: Logger;
  /** Clock in ms since the epoch, for expiry; tests move it. */
  now?: () => number;
  /**
   * Names of temporaries this process is using, shared with the data path: its stale-temporary
   * sweeps (agent/src/transfer/stale-temps.ts) leave a flattened copy alone while it is served.
   */
  activeTemps: Set<string>;
  /** Told the body bytes of each response served (the agent's metrics). */
  onServed?: (bytes: number) => void;
}

/**
 * The export listener and its live exports (docs/image-datastore.md#export-for-marketplaces):
 * what ExportImage publishes into, and what the agent starts and stops with the rest.
 */
export class ExportService {
  private readonly registry: ExportRegistry;
  private readonly server: ExportServer;
  private port = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ExportServiceOptions) {
    this.registry = new ExportRegistry({
      ...(opts.now ? { now: opts.now } : {}),
      onDisposeError: (e, err) =>
        opts.logger.warn({ exportId: e.id, source: e.source, err }, 'could not remove an export copy'),
    });
    this.server = new ExportServer({
      tls: opts.tls,
      registry: this.registry,
      logger: opts.logger,
      ...(opts.onServed ? { onServed: opts.onServed } : {}),
    });
  }

  async start(): Promise<void> {
    const { host, port } = splitListen(this.opts.config.listen);
    this.port = await this.server.listen(host, port);
    // unref: expiry never keeps the process alive; a lookup sweeps as well.
    this.timer = setInterval(() => void this.sweep(), EXPORT_SWEEP_INTERVAL_MS).unref();
    this.opts.logger.info({ address: this.address(), urlBase: this.urlBase() }, 'export listener up');
  }

  /** host:port actually bound. */
  address(): string {
    return `${splitListen(this.opts.config.listen).host}:${this.port}`;
  }

  /** What every export URL starts with: export.advertise, or the listen host and bound port. */
  urlBase(): string {
    if (this.opts.config.advertise !== undefined) return this.opts.config.advertise;
    const { host } = splitListen(this.opts.config.listen);
    return `https://${WILDCARD_HOSTS.has(host) ? this.opts.name : host}:${this.port}`;
  }

  /** export.ttlSeconds: an export's life when ExportImage leaves ttl_seconds at 0. */
  get defaultTtlSeconds(): number {
    return this.opts.config.ttlSeconds;
  }

  /**
   * A temporary beside `entry` (`.<name>.tmp-<agent>-<hex>`, the data path's own pattern, so a
   * copy left by a killed agent is swept at its next start) that the sweeps leave alone until
   * released; release removes it.
   */
  holdTemp(entry: string): TempHold {
    const name = receiveTempName(basename(entry), this.opts.name);
    const path = join(dirname(entry), name);
    this.opts.activeTemps.add(name);
    return {
      path,
      release: async () => {
        await rm(path, { force: true });
        this.opts.activeTemps.delete(name);
      },
    };
  }

  /** Serves `file` for `ttlSeconds` and returns its URL (secret: log the entry's id, never it). */
  publish(file: ExportedFile, ttlSeconds: number): { url: string; entry: ExportEntry } {
    const { token, entry } = this.registry.add(file, ttlSeconds);
    return { url: `${this.urlBase()}${EXPORT_PATH_PREFIX}${token}/${file.name}`, entry };
  }

  /** Removes expired exports (their copies included) now. */
  async sweep(): Promise<void> {
    const ended = await this.registry.sweep();
    if (ended > 0) this.opts.logger.info({ ended }, 'exports expired');
  }

  /** Stops listening, ends every export and removes their copies. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.server.close();
    await this.registry.close();
  }
}

/** "host:port" → parts (Fields.address checked the shape; IPv6 keeps its brackets). */
function splitListen(listen: string): { host: string; port: number } {
  const at = listen.lastIndexOf(':');
  return { host: listen.slice(0, at), port: Number(listen.slice(at + 1)) };
}
