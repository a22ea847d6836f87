// A real Prometheus server (Debian's `prometheus` package, scripts/install-deps.sh) scraping the
// daemons under test: what it stores is what its own text-format parser read from our /metrics.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, stopDaemon, waitUntil } from '../../cli/src/demo/processes.js';

export const PROMETHEUS = '/usr/bin/prometheus';
/** Scrape often, so a test waits about a second for the numbers of the calls it just made. */
const SCRAPE_INTERVAL = '1s';

export interface ScrapeTarget {
  job: string;
  address: string;
  /** PEM files the scraper presents (mutual TLS); absent: plain http. */
  tls?: { ca: string; cert: string; key: string };
}

export interface Sample {
  metric: Record<string, string>;
  value: number;
}

export interface PrometheusServer {
  /** An instant PromQL query, now. */
  query(expr: string): Promise<Sample[]>;
  /** The single value of `expr`; 0 when it has no series (a counter never incremented). */
  value(expr: string): Promise<number>;
  /** Every label set stored for `match` (e.g. `{__name__=~"one_storage_.+"}`). */
  series(match: string): Promise<Array<Record<string, string>>>;
  /** Waits until every target was scraped (successfully) after `afterMs`, so queries see it. */
  scrapedAfter(afterMs: number, timeoutMs?: number): Promise<void>;
  /** Waits until `expr`'s single value satisfies `holds` (for what a daemon records a little later). */
  waitForValue(expr: string, holds: (value: number) => boolean, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts Prometheus on a free loopback port, its data and config in `dir`, scraping `targets`. */
export async function startPrometheus(
  dir: string,
  targets: readonly ScrapeTarget[],
): Promise<PrometheusServer> {
  const config = {
    global: { scrape_interval: SCRAPE_INTERVAL, scrape_timeout: SCRAPE_INTERVAL },
    scrape_configs: targets.map((t) => ({
      job_name: t.job,
      scheme: t.tls ? 'https' : 'http',
      ...(t.tls ? { tls_config: { ca_file: t.tls.ca, cert_file: t.tls.cert, key_file: t.tls.key } } : {}),
      static_configs: [{ targets: [t.address] }],
    })),
  };
  const configFile = join(dir, 'prometheus.yml');
  // JSON is YAML: Prometheus reads it as its config.
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const port = await freePort();
  const log = join(dir, 'prometheus.log');
  const fd = openSync(log, 'a');
  let child: ChildProcess;
  try {
    child = spawn(
      PROMETHEUS,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', fd, fd], env: { ...process.env, LANG: 'C' } },
    );
  } finally {
    closeSync(fd);
  }
  const base = `http://127.0.0.1:${port}`;
  const api = async (path: string, params: Record<string, string>): Promise<unknown> => {
    const res = await fetch(`${base}${path}?${new URLSearchParams(params).toString()}`, {
      signal: AbortSignal.timeout(5_000),
    });
    const body = (await res.json()) as { status: string; data: unknown; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  const query = async (expr: string): Promise<Sample[]> => {
    const data = (await api('/api/v1/query', { query: expr })) as {
      result: Array<{ metric: Record<string, string>; value: [number, string] }>;
    };
    return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  };
  const server: PrometheusServer = {
    query,
    async value(expr) {
      const samples = await query(expr);
      if (samples.length > 1) throw new Error(`${expr}: ${samples.length} series, expected one`);
      return samples[0]?.value ?? 0;
    },
    async series(match) {
      return (await api('/api/v1/series', { 'match[]': match })) as Array<Record<string, string>>;
    },
    async scrapedAfter(afterMs, timeoutMs = 20_000) {
      await waitUntil(
        'prometheus scrapes',
        async () => {
          // timestamp() of a plain selector is the scrape's time (of an expression, the query's).
          const at = await query('timestamp(up)');
          const up = await query('up');
          const fresh = at.length === targets.length && at.every((s) => s.value * 1000 > afterMs);
          return fresh && up.every((s) => s.value === 1);
        },
        child,
        log,
        timeoutMs,
      );
    },
    async waitForValue(expr, holds, timeoutMs = 20_000) {
      await waitUntil(
        `prometheus: ${expr}`,
        async () => holds(await server.value(expr)),
        child,
        log,
        timeoutMs,
      );
    },
    stop: () => stopDaemon(child),
  };
  try {
    await waitUntil('prometheus', async () => (await fetch(`${base}/-/ready`)).ok, child, log);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}
