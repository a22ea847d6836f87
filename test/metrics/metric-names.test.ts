// The metric names are written once, in the code that registers them; the alert rules, the
// Grafana dashboard and docs/metrics.md must use exactly those. The alert rules also pass
// promtool's checks and their own unit tests (deploy/prometheus/one-storage-alerts.test.yml).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import { initCa } from '../../common/src/pki/pki.js';
import { AgentMetrics } from '../../agent/src/metrics/agent-metrics.js';
import { packageRoot } from '../../cli/src/demo/processes.js';
import { CoordinatorMetrics } from '../../coordinator/src/metrics/coordinator-metrics.js';
import { daemonRegistry } from '../../common/src/metrics/daemon-registry.js';

const ROOT = packageRoot();
const PROMTOOL = '/usr/bin/promtool';
const ALERTS = join(ROOT, 'deploy/prometheus/one-storage-alerts.yml');
const ALERT_TESTS = join(ROOT, 'deploy/prometheus/one-storage-alerts.test.yml');
const DASHBOARD = join(ROOT, 'deploy/grafana/one-storage-dashboard.json');
const DOC = join(ROOT, 'docs/metrics.md');
let CERT: Buffer;

beforeAll(async () => {
  // Any certificate will do for the expiry gauge: the CA's, made by the real PKI code.
  const dir = await mkdtemp(join(tmpdir(), 'one-storage-metric-names-'));
  try {
    CERT = readFileSync((await initCa(dir)).files.cert);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Every metric name the daemons can expose, histograms also as their _bucket, _sum and _count. */
async function exposedNames(): Promise<{ ours: Set<string>; all: Set<string> }> {
  const coordinator = daemonRegistry(CERT);
  new CoordinatorMetrics(coordinator);
  const agent = daemonRegistry(CERT);
  new AgentMetrics(agent, () => 0);
  const ours = new Set<string>();
  const all = new Set<string>();
  for (const registry of [coordinator, agent]) {
    for (const m of await registry.getMetricsAsJSON()) {
      const names =
        m.type.toString() === 'histogram' ? ['_bucket', '_sum', '_count'].map((s) => m.name + s) : [m.name];
      for (const n of [m.name, ...names]) all.add(n);
      if (!/^one_storage_(process|nodejs)_/.test(m.name)) ours.add(m.name);
    }
  }
  return { ours, all };
}

const namesIn = (text: string): string[] => [...new Set(text.match(/\bone_storage_[a-z0-9_]+/g) ?? [])];

describe('metric names', () => {
  it('the alert rules and the dashboard use only names the daemons expose', async () => {
    const { all } = await exposedNames();
    const used = [...namesIn(readFileSync(ALERTS, 'utf8')), ...namesIn(readFileSync(DASHBOARD, 'utf8'))];
    expect(used.length).toBeGreaterThan(10);
    for (const name of used) expect(all, name).toContain(name);
  });

  it('docs/metrics.md documents every metric of ours and names no other', async () => {
    const { ours, all } = await exposedNames();
    const doc = readFileSync(DOC, 'utf8');
    for (const name of ours) expect(doc, name).toContain(`\`${name}\``);
    // The first cell of each table row names a metric (the Ansible variables elsewhere do not).
    const documented = [...doc.matchAll(/^\| `(one_storage_[a-z0-9_]+)`/gm)].map((m) => m[1] ?? '');
    expect(documented.length).toBeGreaterThanOrEqual(ours.size);
    for (const name of documented) expect(all, `docs/metrics.md names ${name}`).toContain(name);
  });

  it('each daemon registry is its own: nothing is shared through the global registry', async () => {
    const a = daemonRegistry(CERT);
    const b = daemonRegistry(CERT);
    new AgentMetrics(a, () => 3);
    new AgentMetrics(b, () => 5);
    const jobs = async (r: Registry): Promise<string> =>
      (await r.getSingleMetricAsString('one_storage_jobs_in_flight')).split('\n').pop() ?? '';
    expect(await jobs(a)).toBe('one_storage_jobs_in_flight 3');
    expect(await jobs(b)).toBe('one_storage_jobs_in_flight 5');
  });
});

describe('deploy/', () => {
  it('the alert rules pass promtool check rules and their unit tests', () => {
    for (const args of [
      ['check', 'rules', ALERTS],
      ['test', 'rules', ALERT_TESTS],
    ]) {
      const run = spawnSync(PROMTOOL, args, {
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, LANG: 'C' },
      });
      if (run.error) throw new Error(`${PROMTOOL}: ${run.error.message} (run scripts/install-deps.sh)`);
      expect(run.status, `${args.join(' ')}: ${run.stdout}${run.stderr}`).toBe(0);
      expect(run.stdout).toContain('SUCCESS');
    }
  });

  it('the dashboard is a Grafana dashboard: unique panel ids, each panel placed, each query named', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      uid: string;
      title: string;
      schemaVersion: number;
      panels: Array<{
        id: number;
        type: string;
        gridPos: { h: number; w: number; x: number; y: number };
        targets?: Array<{ refId: string; expr: string }>;
      }>;
    };
    expect(dashboard.uid).toBe('one-storage');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.targets?.length, `panel ${p.id}`).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t.expr).toMatch(/one_storage_|up\{/);
    }
  });
});
