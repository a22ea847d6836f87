// `one-storage status` and `one-storage doctor` as an operator (and the rolling upgrade) runs them:
// the built CLI as a real process, with the coordinator's config and certificate, against real
// agents over mutual TLS on loopback and real libvirt. The stack has four agents: frontend healthy;
// host01 with a certificate that expires in ten days, libvirt declared unused, and monitoring
// pushed to a fake monitord; host02 running with a certificate that has expired; host03 stopped.
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distEntry, startDaemon, stopDaemon, waitUntil } from '../cli/src/demo/processes.js';
import { Stack } from '../cli/src/demo/stack.js';
import { pkiFiles } from '../common/src/pki/pki.js';
import { loadTls } from '../common/src/tls.js';
import { AgentClient } from '../coordinator/src/agents/agent-client.js';
import { editOnedConf } from '../cli/src/oned-conf/edit-oned-conf.js';
import { editVmmExecrc } from '../cli/src/vmm-execrc/edit-vmm-execrc.js';
import { FakeMonitord } from './fakes/monitord/fake-monitord.js';
import { reissueWithValidity } from './support/certificate-validity.js';
import { ensureLibvirt } from './support/libvirt.js';

const run = promisify(execFile);
const VERSION = (JSON.parse(await readFile('package.json', 'utf8')) as { version: string }).version;
const DAY_MS = 24 * 3600_000;
/** A little over ten days, so that "10 days" survives the test's own minutes. */
const TEN_DAYS_MS = 10 * DAY_MS + 3600_000;
const STOCK_VMM_EXECRC = 'LIVE_DISK_SNAPSHOTS="kvm-qcow2 kvm-shared qemu-qcow2"\n';

/** host01's OpenNebula id in its monitoring messages. */
const HOST01_ID = 1;
/** node-cron with seconds: host01 pushes SYSTEM_HOST (its datastores) every second, so a delivery comes at once. */
const EVERY_SECOND = '* * * * * *';

let baseDir: string;
let monitord: FakeMonitord;
let stack: Stack;
let config: string;
let host02: ChildProcess | undefined;
let onedConf: string;
let vmmExecrc: string;

/** The CLI as a real process, asynchronously: the stack's fake oned answers from this process. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [distEntry('cli/src/main.js'), ...args], { timeout: 120_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
/** The agent's Health answer, asked as the coordinator asks it. */
async function healthOf(name: string): Promise<{ lastMonitordDeliveryMs: number }> {
  const client = new AgentClient(
    { name, endpoint: `127.0.0.1:${stack.agentPort(name)}`, certName: name },
    loadTls(pkiFiles(stack.pkiDir, 'coordinator'), 'test'),
  );
  try {
    return await client.call('health', { deep: false }, { deadlineMs: 5_000, requestId: 'test' });
  } finally {
    client.close();
  }
}
const lineOf = (stdout: string, name: string): string =>
  stdout.split('\n').find((l) => l.startsWith(`${name} `)) ?? `(no line for ${name} in:\n${stdout})`;

beforeAll(async () => {
  await ensureLibvirt();
  baseDir = await mkdtemp(join(tmpdir(), 'status-doctor-'));
  monitord = await FakeMonitord.start();
  stack = await Stack.start({
    baseDir,
    hosts: ['frontend', 'host01', 'host02', 'host03'],
    agentSettings: (name) =>
      name === 'host01'
        ? {
            libvirt: { enabled: false },
            monitord: { address: '127.0.0.1', port: monitord.port },
            monitor: {
              report: 'push',
              hostId: HOST01_ID,
              socket: join(baseDir, 'host01-monitor.sock'),
              schedules: { system: EVERY_SECOND },
            },
          }
        : {},
  });
  config = join(stack.baseDir, 'etc', 'coordinator.json');
  const now = Date.now();
  await reissueWithValidity(stack.pkiDir, 'host01', 'agent', now - DAY_MS, now + TEN_DAYS_MS);
  await stack.stopAgent('host01');
  await stack.startAgent('host01');
  // The restarted agent's own first delivery (status reports what this process delivered; a
  // message the fake got from the agent before its restart does not count).
  const deadline = Date.now() + 60_000;
  while ((await healthOf('host01')).lastMonitordDeliveryMs === 0) {
    if (Date.now() > deadline) throw new Error('the restarted host01 delivered nothing to monitord in 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  // host02 runs with an expired certificate: the stack's own start waits for a Hello that the
  // handshake refuses, so this test starts it and waits for its "agent listening" line instead.
  await reissueWithValidity(stack.pkiDir, 'host02', 'agent', now - 30 * DAY_MS, now - DAY_MS);
  await stack.stopAgent('host02');
  const log = join(stack.baseDir, 'logs', 'agent-host02-expired.log');
  host02 = startDaemon(
    distEntry('agent/src/main.js'),
    ['--config', join(stack.baseDir, 'etc', 'agent-host02.json')],
    log,
  );
  const started = host02;
  await waitUntil(
    'agent host02',
    async () => (await readFile(log, 'utf8')).includes('"agent listening"'),
    started,
    log,
  );
  await stack.stopAgent('host03');
  onedConf = join(stack.baseDir, 'oned.conf');
  vmmExecrc = join(stack.baseDir, 'vmm_execrc');
  const stock = await readFile('test/ansible/fixtures/stock-oned.conf', 'utf8');
  await writeFile(onedConf, editOnedConf(stock, 'apply', onedConf));
  await writeFile(vmmExecrc, editVmmExecrc(STOCK_VMM_EXECRC, 'apply', vmmExecrc));
}, 180_000);
afterAll(async () => {
  if (host02) await stopDaemon(host02);
  await stack?.stop();
  await monitord?.close();
  if (baseDir) await rm(baseDir, { recursive: true, force: true });
});

describe('one-storage status', () => {
  it('one line for the coordinator and per agent; an unreachable or expired agent makes the exit code 1', async () => {
    const r = await cli(['status', '--config', config, '--timeout-ms', '5000']);
    expect(r.stderr).toBe('');
    expect(lineOf(r.stdout, 'coordinator')).toMatch(
      /^coordinator ok socket \S+coordinator\.sock answers: version \d+\.\d+\.\d+, 0 calls running; certificate valid until \d{4}-\d\d-\d\d \(\d+ days\)$/,
    );
    expect(lineOf(r.stdout, 'frontend')).toMatch(
      new RegExp(
        `^frontend ok version ${VERSION}; certificate valid until [-\\d]+ \\(\\d+ days\\); /var/lib/one/datastores [\\d.]+ [KMGT]iB free of [\\d.]+ [KMGT]iB; /var/lib/one/vms [^;]+; libvirt ok; monitoring off$`,
      ),
    );
    expect(lineOf(r.stdout, 'host01')).toMatch(
      /^host01 WARNING certificate expires in 10 days \(\d{4}-\d\d-\d\d\); version [^;]+; \/var\/lib\/one\/datastores [^;]+; libvirt not used on this node \(libvirt\.enabled is false\); monitoring push \(last delivery to monitord \d+ s ago\)$/,
    );
    expect(lineOf(r.stdout, 'host02')).toMatch(
      /^host02 FAILED unreachable: its certificate expired on \d{4}-\d\d-\d\d: the TLS handshake refuses it \(CERT_HAS_EXPIRED\) at 127\.0\.0\.1:\d+$/,
    );
    expect(lineOf(r.stdout, 'host03')).toMatch(
      /^host03 FAILED unreachable: connection refused at 127\.0\.0\.1:\d+: is one-storage-agent running there\?$/,
    );
    expect(r.stdout.trim().split('\n')).toHaveLength(5);
    expect(r.code).toBe(1);
  });

  it('--agent asks only the named agents, as the rolling upgrade does: a warning alone exits 0', async () => {
    const warned = await cli(['status', '--config', config, '--agent', 'host01']);
    expect([warned.code, warned.stdout.trim().split('\n').length]).toEqual([0, 1]);
    expect(warned.stdout).toMatch(/^host01 WARNING certificate expires in 10 days/);
    const ok = await cli(['status', '--config', config, '--agent', 'frontend']);
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringMatching(/^frontend ok version /)]);
    const down = await cli(['status', '--config', config, '--agent', 'host03', '--timeout-ms', '3000']);
    expect([down.code, down.stdout]).toEqual([
      1,
      expect.stringMatching(/^host03 FAILED unreachable: connection refused/),
    ]);
  });

  it('--json gives the same as one object for scripts', async () => {
    const r = await cli(['status', '--config', config, '--json', '--timeout-ms', '5000']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      exitCode: number;
      coordinator: { state: string; reachable: boolean };
      agents: Array<{
        name: string;
        state: string;
        reachable: boolean;
        version?: string;
        certificate?: { state: string; daysLeft: number };
        datastores?: Array<{
          location: string;
          ok: boolean;
          totalBytes: number;
          freeBytes: number;
          usedPercent: number;
        }>;
        libvirt?: { ok: boolean; disabled: boolean };
        monitoring?: { mode: string };
        skewMs?: number;
        findings: Array<{ level: string; text: string }>;
      }>;
    };
    expect([report.ok, report.exitCode, report.coordinator.state]).toEqual([false, 1, 'ok']);
    const byName = Object.fromEntries(report.agents.map((a) => [a.name, a]));
    expect(Object.keys(byName).sort()).toEqual(['frontend', 'host01', 'host02', 'host03']);
    const fe = byName['frontend'];
    expect(fe).toMatchObject({
      state: 'ok',
      reachable: true,
      version: VERSION,
      libvirt: { ok: true, disabled: false },
    });
    expect(fe?.monitoring?.mode).toBe('off');
    expect(Math.abs(fe?.skewMs ?? Infinity)).toBeLessThan(2_000);
    expect(fe?.datastores?.map((d) => d.location)).toEqual(['/var/lib/one/datastores', '/var/lib/one/vms']);
    expect(fe?.datastores?.[0]?.freeBytes).toBeGreaterThan(0);
    expect(fe?.datastores?.[0]?.totalBytes).toBeGreaterThanOrEqual(
      fe?.datastores?.[0]?.freeBytes ?? Infinity,
    );
    expect(byName['host01']?.monitoring).toMatchObject({ mode: 'push', lastError: '' });
    expect(byName['host01']?.certificate).toEqual({
      ...byName['host01']?.certificate,
      state: 'warning',
      daysLeft: 10,
    });
    expect(byName['host02']).toMatchObject({ state: 'failed', reachable: false });
    expect(byName['host02']?.findings[0]?.text).toMatch(/certificate expired on/);
    expect(byName['host03']).toMatchObject({ state: 'failed', reachable: false });
  });

  it('exits 2 naming the problem for an unknown agent or a missing config', async () => {
    const unknown = await cli(['status', '--config', config, '--agent', 'host09']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /no agent named host09 in .*coordinator\.json \(agents: frontend, host01, host02, host03\)/,
    );
    const missing = await cli(['status', '--config', join(stack.baseDir, 'nope.yaml')]);
    expect([missing.code, missing.stderr]).toEqual([2, expect.stringMatching(/nope\.yaml/)]);
  });

  it('with an agent certificate instead of the coordinator one, the agents refuse it, and status says so', async () => {
    const asAgent = join(stack.baseDir, 'etc', 'status-as-agent.json');
    const c = JSON.parse(await readFile(config, 'utf8')) as { tls: Record<string, string> };
    c.tls.cert = join(stack.pkiDir, 'frontend.crt');
    c.tls.key = join(stack.pkiDir, 'frontend.key');
    await writeFile(asAgent, JSON.stringify(c));
    const r = await cli(['status', '--config', asAgent, '--agent', 'frontend']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^frontend FAILED .*coordinator/);
  });
});

describe('one-storage doctor', () => {
  const frontEnd = () => ['doctor', '--config', config, '--oned-conf', onedConf, '--vmm-execrc', vmmExecrc];

  it('the front-end end to end: every check ok, exit 0', async () => {
    const r = await cli(frontEnd());
    const names = r.stdout
      .trim()
      .split('\n')
      .map((l) => /^(ok|WARN|FAIL)\s+([^:]+):/.exec(l)?.slice(1, 3).join(' '));
    expect(names).toEqual([
      'ok config',
      'ok CA',
      'ok coordinator certificate',
      'ok shim socket',
      'ok oned',
      'ok shims',
      'ok oned.conf',
      'ok vmm_execrc',
    ]);
    expect(r.stdout).toMatch(
      /^ok {4}oned: 127\.0\.0\.1:\d+ answers with the credentials of \S+one_auth \(OpenNebula 7\.0\.0\)$/m,
    );
    expect(r.code).toBe(0);
  });

  it('a missing shim is a FAIL line naming the file with the command that puts it back, and that command works', async () => {
    const shim = join(stack.remotesDir, 'tm', 'grpc', 'clone');
    await rm(shim);
    const r = await cli(frontEnd());
    expect(r.code).toBe(1);
    const at = r.stdout.split('\n').findIndex((l) => l.startsWith('FAIL  shims: '));
    const [line, fix] = r.stdout.split('\n').slice(at, at + 2);
    expect(line).toBe(`FAIL  shims: ${shim} is missing`);
    expect(fix).toMatch(/^ {2}fix: one-storage shims install --remotes \S+ --socket \S+ --runtime \S+$/);
    const repair = await cli(fix?.replace(/^ {2}fix: one-storage /, '').split(' ') ?? []);
    expect(repair.code, repair.stderr).toBe(0);
    expect((await cli(frontEnd())).code).toBe(0);
  });

  it('--host checks one agent deeply: all ok, the clock skew small; --json parses', async () => {
    const r = await cli(['doctor', '--config', config, '--host', 'frontend']);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => !l.startsWith('ok '))).toEqual([]);
    const names = lines.map((l) => /^ok\s+([^:]+):/.exec(l)?.[1]);
    expect(names).toEqual([
      'agent',
      'clock',
      'datastore /var/lib/one/datastores',
      'datastore /var/lib/one/vms',
      'monitoring',
      'qemu-img',
      'qemu-img features',
      'qemu-nbd',
      'libvirt',
      'QEMU',
      'root /var/lib/one/datastores',
      'root /var/lib/one/vms',
      'data path',
      'certificate',
    ]);
    expect(r.stdout).toMatch(/^ok {4}clock: \d+\.\d s (ahead of|behind) this host \(± \d+ ms\)$/m);
    expect(r.stdout).toMatch(/^ok {4}qemu-img: version \d+\.\d+/m);
    expect(r.stdout).toMatch(/^ok {4}libvirt: version \d+\.\d+\.\d+ at qemu:\/\/\/system$/m);
    expect(r.code).toBe(0);

    const json = await cli(['doctor', '--config', config, '--host', 'frontend', '--json']);
    const report = JSON.parse(json.stdout) as {
      ok: boolean;
      exitCode: number;
      checks: Array<{ name: string; level: string; detail: string }>;
    };
    expect([report.ok, report.exitCode, json.code]).toEqual([true, 0, 0]);
    const clock = report.checks.find((c) => c.name === 'clock');
    const skewS = Number(/^(\d+\.\d) s/.exec(clock?.detail ?? '')?.[1]);
    expect(skewS).toBeLessThan(2);
  });

  it('--host on an agent whose certificate expired: one FAIL saying so, exit 1', async () => {
    const r = await cli(['doctor', '--config', config, '--host', 'host02', '--timeout-ms', '5000']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL {2}agent: host02: .*its certificate expired on \d{4}-\d\d-\d\d/m);
    expect(r.stdout).toMatch(/^ {2}fix: /m);
  });
});

describe('--help', () => {
  it('every command answers --help with its usage, exit 0', async () => {
    const commands = [
      'pki init',
      'pki issue',
      'shims install',
      'shims uninstall',
      'demo',
      'journal',
      'status',
      'doctor',
      'oned-conf',
      'vmm-execrc',
    ];
    for (const command of commands) {
      const r = await cli([...command.split(' '), '--help']);
      expect({ command, code: r.code, first: r.stdout.split('\n')[0] }).toEqual({
        command,
        code: 0,
        first: expect.stringMatching(new RegExp(`^usage: one-storage ${command}( |$)`)),
      });
    }
    const all = await cli(['--help']);
    expect(all.code).toBe(0);
    for (const command of commands) expect(all.stdout).toContain(`one-storage ${command}`);
  });
});
