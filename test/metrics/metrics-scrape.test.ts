// /metrics of a real coordinator and real agents on loopback: real driver calls through the
// installed shims, scraped by a real Prometheus server (its own text-format parser reads what we
// serve; mutual TLS with a certificate `pki issue` made) and checked by `promtool check metrics`.
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../../cli/src/demo/demo-images.js';
import { writeVmXml } from '../../cli/src/demo/fake-oned/fixtures.js';
import { distEntry, freePorts, packageRoot } from '../../cli/src/demo/processes.js';
import { runAction, type ActionRun } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { initCa, issueCertificate, pkiFiles } from '../../common/src/pki/pki.js';
import { StorageError } from '../../common/src/errors.js';
import { loadTls } from '../../common/src/tls.js';
import { AgentClient } from '../../coordinator/src/agents/agent-client.js';
import { Journal } from '../../coordinator/src/journal/journal.js';
import { ImageFormat } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { FakeMonitord } from '../fakes/monitord/fake-monitord.js';
import { downloadExport } from '../support/ds-image-life.js';
import { expectOk } from '../support/assertions.js';
import { startPrometheus, type PrometheusServer } from '../support/prometheus.js';
import { scrape } from '../support/scrape.js';

/** A VM id no label value could hold by chance (labels must never carry VM ids). */
const VM = 4711;
const HOST_ID = 3;
const SYS = `${ONED_DATASTORE_LOCATION}/0`;
const SOURCE = `${ONED_DATASTORE_LOCATION}/1/0123456789abcdef0123456789abcdef`;
const MISSING = `${ONED_DATASTORE_LOCATION}/1/fedcba9876543210fedcba9876543210`;
const PROMTOOL = '/usr/bin/promtool';
/** The frontend's agent serves plain http on loopback; the others and the coordinator mutual TLS. */
const PLAIN = 'frontend';

let base: string;
let stack: Stack;
let monitord: FakeMonitord;
let prometheus: PrometheusServer;
const addresses: Record<string, string> = {};
let scraper: { ca: string; cert: string; key: string };
let failedReason = '';

const tm = (action: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc', action, args);
/** An agent client with the coordinator's certificate, for RPCs no driver call makes here. */
const coordinatorClient = (host: string): AgentClient =>
  new AgentClient(
    { name: host, endpoint: `127.0.0.1:${stack.agentPort(host)}`, certName: host },
    loadTls(pkiFiles(stack.pkiDir, 'coordinator'), 'test'),
  );

beforeAll(async () => {
  for (const tool of [PROMTOOL, '/usr/bin/prometheus']) {
    if (spawnSync(tool, ['--version']).status !== 0)
      throw new Error(`${tool} is missing: run scripts/install-deps.sh (Debian package prometheus)`);
  }
  base = await mkdtemp(join(tmpdir(), 'one-storage-metrics-'));
  monitord = await FakeMonitord.start({ knownHosts: [HOST_ID] });
  const [exportPort, coordinatorPort, ...agentPorts] = await freePorts(5);
  const hosts = ['frontend', 'host01', 'host02'];
  hosts.forEach((h, i) => (addresses[h] = `127.0.0.1:${agentPorts[i]}`));
  addresses['coordinator'] = `127.0.0.1:${coordinatorPort}`;
  stack = await Stack.start({
    baseDir: join(base, 'stack'),
    agentSettings: (name) => ({
      metrics: { listen: addresses[name], ...(name === PLAIN ? {} : { tls: true }) },
      // The front-end's agent serves exports, so export bytes have something to count.
      ...(name === 'frontend' ? { export: { listen: `127.0.0.1:${exportPort}` } } : {}),
      // host02 pushes to monitord, so the monitoring metrics have something to count.
      ...(name === 'host02'
        ? {
            monitord: { address: '127.0.0.1', port: monitord.port },
            monitor: { report: 'push', hostId: HOST_ID, socket: join(base, 'host02-monitor.sock') },
          }
        : {}),
    }),
    coordinatorSettings: { metrics: { listen: addresses['coordinator'], tls: true } },
  });
  // The scraper's certificate, as docs/metrics.md tells an operator to issue it.
  execFileSync(process.execPath, [
    distEntry('cli/src/main.js'),
    'pki',
    'issue',
    '--name',
    'prometheus',
    '--dir',
    stack.pkiDir,
  ]);
  scraper = pkiFiles(stack.pkiDir, 'prometheus');
  await mkdir(join(base, 'prometheus'));
  prometheus = await startPrometheus(
    join(base, 'prometheus'),
    Object.entries(addresses).map(([job, address]) => ({
      job,
      address,
      ...(job === PLAIN ? {} : { tls: scraper }),
    })),
  );
  await makeImage(stack.localPath('frontend', SOURCE), 'qcow2', 16, 0x5a);
  await writeVmXml(stack.fixturesDir, {
    id: VM,
    disks: [
      { diskId: 0, imageId: 0, source: SOURCE, format: 'qcow2', tmMad: 'grpc', size: 16, originalSize: 16 },
      // An image whose file is gone: its clone fails on the front-end's agent.
      { diskId: 1, imageId: 1, source: MISSING, format: 'qcow2', tmMad: 'grpc', size: 16, originalSize: 16 },
    ],
    history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
  });
}, 120_000);

afterAll(async () => {
  await prometheus?.stop();
  await stack?.stop();
  await monitord?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

describe('driver calls counted as made', () => {
  it('one clone that succeeds and one that fails move the counters by exactly one each', async () => {
    expectOk(await tm('clone', [`frontend:${SOURCE}`, `host01:${SYS}/${VM}/disk.0`, `${VM}`, '0']));
    const failed = await tm('clone', [`frontend:${MISSING}`, `host01:${SYS}/${VM}/disk.1`, `${VM}`, '0']);
    expect(failed.code).not.toBe(0);
    failedReason = /^ERROR: clone: ([A-Z_]+) /m.exec(failed.stderr)?.[1] ?? '';
    expect(failedReason, failed.stderr).not.toBe('');
    await prometheus.scrapedAfter(Date.now());

    const clone = 'job="coordinator",kind="tm",driver="grpc",action="clone"';
    expect(await prometheus.value(`one_storage_driver_calls_total{${clone},outcome="success"}`)).toBe(1);
    expect(await prometheus.value(`one_storage_driver_calls_total{${clone},outcome="failure"}`)).toBe(1);
    expect(
      await prometheus.value(`one_storage_driver_call_errors_total{${clone},reason="${failedReason}"}`),
    ).toBe(1);
    expect(await prometheus.value(`sum(one_storage_driver_call_duration_seconds_count{${clone}})`)).toBe(2);
    expect(await prometheus.value('one_storage_driver_calls_in_flight{job="coordinator"}')).toBe(0);
    expect(await prometheus.value('one_storage_driver_call_oldest_in_flight_seconds')).toBe(0);
  });

  it("counts each agent RPC on the coordinator's side and on the agent's, with the same bytes", async () => {
    const journal = new Journal(stack.journalPath);
    let receiveBytes: number;
    let receives: number;
    let failedSteps: number;
    try {
      const steps = journal.recentCalls(10).flatMap((c) => journal.steps(c.requestId));
      const received = steps.filter((s) => s.rpc === 'receive' && s.outcome === 'success');
      receives = received.length;
      receiveBytes = received.reduce((sum, s) => sum + (s.bytes ?? 0), 0);
      failedSteps = steps.filter((s) => s.outcome === 'failure').length;
    } finally {
      journal.close();
    }
    expect(receives).toBe(1);
    expect(receiveBytes).toBeGreaterThan(0);
    const rpc = 'job="coordinator",agent="host01",method="receive",outcome="success"';
    expect(await prometheus.value(`one_storage_agent_rpc_duration_seconds_count{${rpc}}`)).toBe(1);
    expect(
      await prometheus.value(
        'one_storage_rpc_server_duration_seconds_count{job="host01",method="Receive",code="OK"}',
      ),
    ).toBe(1);
    // Failed agent RPCs: as many on the coordinator's side as the journal has failed steps.
    expect(await prometheus.value('sum(one_storage_agent_rpc_errors_total)')).toBe(failedSteps);
    expect(
      await prometheus.value('one_storage_bytes_moved_total{job="coordinator",path_kind="transfer"}'),
    ).toBe(receiveBytes);
    expect(
      await prometheus.value('one_storage_bytes_moved_total{job="host01",path_kind="transfer_received"}'),
    ).toBe(receiveBytes);
    // The sender counts its send once the session ends, a moment after the receiver's reply may.
    await prometheus.waitForValue(
      'one_storage_bytes_moved_total{job="frontend",path_kind="transfer_sent"}',
      (bytes) => bytes === receiveBytes,
    );
    expect(await prometheus.value('sum(one_storage_jobs_in_flight)')).toBe(0);
  });

  it('counts the bytes an export download served', async () => {
    const client = coordinatorClient('frontend');
    let url: string;
    try {
      ({ url } = await client.call(
        'exportImage',
        { source: SOURCE, format: ImageFormat.IMAGE_FORMAT_QCOW2, ttlSeconds: 0, label: 'metrics' },
        { deadlineMs: 30_000, requestId: 'export-metrics' },
      ));
    } finally {
      client.close();
    }
    const body = await downloadExport(stack, url);
    expect(body.length).toBeGreaterThan(0);
    await prometheus.waitForValue(
      'one_storage_bytes_moved_total{job="frontend",path_kind="export"}',
      (bytes) => bytes === body.length,
    );
  });

  it("labels an agent's failed RPC with its code and reason, once", async () => {
    const client = coordinatorClient('host01');
    let reason = '';
    try {
      await client.call(
        'stat',
        { path: '/etc/passwd', follow: false },
        { deadlineMs: 5_000, requestId: 'outside' },
      );
    } catch (err) {
      reason = err instanceof StorageError ? err.reason : String(err);
    } finally {
      client.close();
    }
    expect(reason).toBe('PATH_OUTSIDE_ROOTS');
    await prometheus.scrapedAfter(Date.now());
    const labels = 'job="host01",method="Stat",code="PERMISSION_DENIED",reason="PATH_OUTSIDE_ROOTS"';
    expect(await prometheus.value(`one_storage_rpc_server_duration_seconds_count{${labels}}`)).toBe(1);
  });
});

describe('what every daemon exposes', () => {
  it('is scraped over mutual TLS (and plain http on loopback) by Prometheus, with process metrics', async () => {
    const up = await prometheus.query('up');
    expect(Object.fromEntries(up.map((s) => [s.metric['job'], s.value]))).toEqual({
      coordinator: 1,
      frontend: 1,
      host01: 1,
      host02: 1,
    });
    expect(await prometheus.query('one_storage_process_cpu_user_seconds_total')).toHaveLength(4);
    expect(await prometheus.query('one_storage_nodejs_eventloop_lag_seconds')).toHaveLength(4);
  });

  it("reports each daemon's certificate expiry", async () => {
    const notAfter = (name: string): number =>
      Math.floor(
        Date.parse(new X509Certificate(readFileSync(pkiFiles(stack.pkiDir, name).cert)).validTo) / 1000,
      );
    for (const name of ['coordinator', 'frontend', 'host01', 'host02']) {
      expect(await prometheus.value(`one_storage_certificate_not_after_seconds{job="${name}"}`)).toBe(
        notAfter(name),
      );
    }
  });

  it('counts monitoring runs and the messages sent to monitord', async () => {
    const pid = stack.agentPid('host02');
    if (pid === undefined) throw new Error('host02 is not running');
    process.kill(pid, 'SIGUSR1');
    // A run is recorded once its datagrams are sent and the sender has waited for a refusal.
    const runs = (kind: string): string =>
      `one_storage_monitor_cycle_duration_seconds_count{job="host02",kind="${kind}",result="success"}`;
    await prometheus.waitForValue(runs('system'), (n) => n >= 1);
    await prometheus.waitForValue(runs('vm'), (n) => n >= 1);
    const sent = monitord.accepted.filter((m) => m.hostId === HOST_ID);
    const messages = (type: string): string =>
      `one_storage_monitord_messages_total{job="host02",type="${type}",result="success"}`;
    expect(sent.some((m) => m.type === 'SYSTEM_HOST')).toBe(true);
    for (const type of ['SYSTEM_HOST', 'MONITOR_VM']) {
      expect(await prometheus.value(messages(type)), type).toBe(sent.filter((m) => m.type === type).length);
    }
    expect(await prometheus.value('sum(one_storage_monitord_messages_total{result="failure"})')).toBe(0);
  });

  it('keeps labels bounded: no path, VM id or request id in any label value', async () => {
    const journal = new Journal(stack.journalPath);
    const requestIds = journal.recentCalls(50).map((c) => c.requestId);
    journal.close();
    expect(requestIds.length).toBeGreaterThanOrEqual(2);
    const series = await prometheus.series('{__name__=~"one_storage_.+"}');
    expect(series.length).toBeGreaterThan(50);
    const values = new Set(
      series.flatMap((labels) =>
        Object.entries(labels)
          .filter(([name]) => name !== '__name__' && name !== 'instance')
          .map(([, value]) => value),
      ),
    );
    for (const value of values) {
      expect(value).not.toContain('/');
      expect(value).not.toContain(String(VM));
      for (const id of requestIds) expect(value).not.toContain(id);
    }
    // Every label name of ours is one of the documented few (docs/metrics.md).
    const ours = new Set(
      series
        .filter((l) => !/^one_storage_(process|nodejs)_/.test(l['__name__'] ?? ''))
        .flatMap((l) => Object.keys(l)),
    );
    expect([...ours].sort()).toEqual(
      expect.arrayContaining(['action', 'agent', 'code', 'driver', 'kind', 'method', 'outcome', 'path_kind']),
    );
    const allowed = ['__name__', 'action', 'agent', 'code', 'driver', 'instance', 'job', 'kind', 'le'];
    allowed.push('method', 'outcome', 'path_kind', 'reason', 'result', 'type');
    for (const name of ours) expect(allowed).toContain(name);
  });

  it('serves text that promtool accepts', async () => {
    for (const [name, address] of Object.entries(addresses)) {
      const res = await scrape(address, name === PLAIN ? {} : { ca: scraper.ca, client: scraper });
      expect(res.status).toBe(200);
      expect(res.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
      const check = spawnSync(PROMTOOL, ['check', 'metrics'], {
        input: res.body,
        encoding: 'utf8',
        timeout: 10_000,
        env: { ...process.env, LANG: 'C' },
      });
      // Exit 3 is lint findings, 1 a text the parser refused. The only findings allowed are
      // prom-client's own three gauges named *_total (docs/metrics.md#both-daemons).
      const findings = `${check.stdout}${check.stderr}`.trim().split('\n').filter(Boolean);
      expect([0, 3], `${name}: ${findings.join('; ')}`).toContain(check.status);
      for (const finding of findings)
        expect(finding).toMatch(
          /^one_storage_nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/,
        );
    }
  });
});

describe('deploy/grafana/one-storage-dashboard.json', () => {
  it("every panel's query runs on Prometheus against these daemons", async () => {
    const dashboard = JSON.parse(
      readFileSync(join(packageRoot(), 'deploy/grafana/one-storage-dashboard.json'), 'utf8'),
    ) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
    // The dashboard's variables, as Grafana substitutes them for this test's job names.
    const substitute = (expr: string): string =>
      expr
        .replaceAll('$coordinator_job', 'coordinator')
        .replaceAll('$agent_job', 'frontend|host01|host02')
        .replaceAll('$instance', '.*')
        .replaceAll('$__rate_interval', '1m');
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => substitute(t.expr)));
    expect(exprs.length).toBeGreaterThan(15);
    for (const expr of exprs) await expect(prometheus.query(expr), expr).resolves.toBeDefined();
  });
});

describe('the listener', () => {
  it('answers 404 to any other path or method', async () => {
    const tls = { ca: scraper.ca, client: scraper };
    expect((await scrape(addresses[PLAIN] ?? '', { path: '/other' })).status).toBe(404);
    expect((await scrape(addresses[PLAIN] ?? '', { path: '/' })).status).toBe(404);
    expect((await scrape(addresses[PLAIN] ?? '', { method: 'POST' })).status).toBe(404);
    expect((await scrape(addresses['host01'] ?? '', { ...tls, path: '/other' })).status).toBe(404);
    expect((await scrape(addresses['coordinator'] ?? '', { ...tls, path: '/metrics/x' })).status).toBe(404);
  });

  it('refuses a client without a certificate, or with one from another CA', async () => {
    await expect(scrape(addresses['host01'] ?? '', { ca: scraper.ca })).rejects.toThrow();
    await expect(scrape(addresses['coordinator'] ?? '', { ca: scraper.ca })).rejects.toThrow();
    const otherPki = join(base, 'other-pki');
    await initCa(otherPki);
    await issueCertificate(otherPki, 'intruder');
    const intruder = pkiFiles(otherPki, 'intruder');
    await expect(scrape(addresses['host01'] ?? '', { ca: scraper.ca, client: intruder })).rejects.toThrow();
    // Plain http to a TLS listener gets no metrics either.
    await expect(scrape(addresses['host01'] ?? '')).rejects.toThrow();
  });

  it('refuses a non-loopback listen without TLS at config load: exit 2, one line naming the key', async () => {
    const config = join(base, 'open-metrics.json');
    const agentConfig = JSON.parse(
      readFileSync(join(stack.baseDir, 'etc', 'agent-host01.json'), 'utf8'),
    ) as object;
    await writeFile(config, JSON.stringify({ ...agentConfig, metrics: { listen: '0.0.0.0:9464' } }));
    const run = spawnSync(process.execPath, [distEntry('agent/src/main.js'), '--config', config], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status).toBe(2);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/metrics\.tls: must be true when metrics\.listen is not a loopback address/);
  });
});
