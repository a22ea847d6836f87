import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesystemCapacity } from '../agent/src/monitor/capacity.js';
import { Stack } from '../cli/src/demo/stack.js';
import { loadTls } from '../common/src/tls.js';
import { AgentClient } from '../coordinator/src/agents/agent-client.js';
import { pkiFiles } from '../common/src/pki/pki.js';
import { FakeMonitord } from './fakes/monitord/fake-monitord.js';
import { parseTemplate, scalar, vectors, type Template } from './fakes/monitord/template.js';
import { buildMonitoredDatastores, type ExpectedDisks } from './support/monitor-datastore.js';

// host01 pushes to the monitord stand-in (RSA-encrypted, host id 1); host02 serves the same
// datastore directory in probes mode, so the push path, monitor_ds and the probes can be compared
// on one tree.
const HOST_ID = 1;
const SOCKET_ENV = 'ONE_STORAGE_AGENT_SOCKET';
const PROBE_CONFIG =
  '<MONITOR_CONFIGURATION><DATASTORE_LOCATION>/var/lib/one/datastores</DATASTORE_LOCATION><HOST_ID>2</HOST_ID></MONITOR_CONFIGURATION>';

let base: string;
let stack: Stack;
let monitord: FakeMonitord;
let expected: Record<number, ExpectedDisks>;
const sockets = { host01: '', host02: '' };

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'monitor-e2e-'));
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKeyFile = join(base, 'monitord.pub');
  writeFileSync(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
  monitord = await FakeMonitord.start({ privateKey, knownHosts: [HOST_ID] });
  const dsRoot = join(base, 'datastores');
  expected = await buildMonitoredDatastores(dsRoot);
  sockets.host01 = join(base, 'host01-monitor.sock');
  sockets.host02 = join(base, 'host02-monitor.sock');
  stack = await Stack.start({
    hosts: ['frontend', 'host01', 'host02'],
    hostDirs: { host01: dsRoot, host02: dsRoot },
    agentSettings: (name) => {
      if (name === 'host01') {
        return {
          monitord: { address: '127.0.0.1', port: monitord.port, publicKey: publicKeyFile },
          monitor: {
            report: 'push',
            hostId: HOST_ID,
            socket: sockets.host01,
            schedules: { vm: '* * * * * *', system: '* * * * * *' },
          },
        };
      }
      return name === 'host02' ? { monitor: { report: 'probes', socket: sockets.host02 } } : {};
    },
  });
});

afterAll(async () => {
  await stack?.stop();
  await monitord?.close();
  await rm(base, { recursive: true, force: true });
});

/** Runs a host-side script as the probe runner and the vm/monitor probe do: a process, config on stdin. */
function runScript(
  file: string,
  args: string[],
  socket: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: { ...process.env, [SOCKET_ENV]: socket }, timeout: 30_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(PROBE_CONFIG);
  });
}

/** VM lines as monitord reads them: VM id → the disk sizes in its MONITOR. */
function disksOf(output: string): Map<number, ExpectedDisks> {
  const out = new Map<number, ExpectedDisks>();
  for (const vm of vectors(parseTemplate(output), 'VM')) {
    const monitor = parseTemplate(Buffer.from(vm['MONITOR'] ?? '', 'base64').toString());
    out.set(Number(vm['ID']), sizes(monitor));
  }
  return out;
}

function sizes(monitor: Template): ExpectedDisks {
  const disks: Record<number, number> = {};
  const snapshots: Record<string, number> = {};
  for (const d of vectors(monitor, 'DISK_SIZE')) disks[Number(d['ID'])] = Number(d['SIZE']);
  for (const s of vectors(monitor, 'SNAPSHOT_SIZE'))
    snapshots[`${s['DISK_ID']}/${s['ID']}`] = Number(s['SIZE']);
  return { disks, snapshots };
}

function dsIds(t: Template): number[] {
  return vectors(t, 'DS').map((d) => Number(d['ID']));
}

const probe = (path: string): string => join(stack.remotesDir, 'im', 'kvm-probes.d', path);

describe('monitoring over UDP to monitord', () => {
  it('monitord receives every VM disk and snapshot (multi-digit ids) and the datastore lines, encrypted, from host 1', async () => {
    await monitord.waitFor(
      'VMs 42, 44, 7 and SYSTEM_HOST',
      () => [42, 44, 7].every((id) => monitord.vms.has(id)) && monitord.systemHost.has(HOST_ID),
    );
    expect(monitord.diskSizes(42)).toEqual(expected[42]);
    expect(monitord.diskSizes(44)).toEqual(expected[44]);
    expect(monitord.diskSizes(7)).toEqual(expected[7]);
    // VM 43 has no disks; VM 9 is on a datastore marked with a driver the agent does not know.
    expect(monitord.vms.has(43)).toBe(false);
    expect(monitord.vms.has(9)).toBe(false);
    const system = monitord.systemHost.get(HOST_ID) as Template;
    expect(dsIds(system)).toEqual([0, 100, 101]);
    const location = await filesystemCapacity(stack.datastoreDirs['host01'] as string);
    expect(Number(scalar(system, 'DS_LOCATION_TOTAL_MB'))).toBe(location.totalMb);
    expect(Number(scalar(system, 'DS_LOCATION_FREE_MB'))).toBeGreaterThan(0);
    expect(monitord.accepted.every((m) => m.hostId === HOST_ID && m.decrypted && m.transport === 'udp')).toBe(
      true,
    );
    expect(monitord.dropped).toEqual([]);
  });

  it('tm monitor_ds and the kvm-probes.d probes, run as processes, report the same numbers', async () => {
    const ds0 = await runScript(
      join(stack.remotesDir, 'tm', 'grpc', 'monitor_ds'),
      ['/var/lib/one/datastores/0'],
      sockets.host02,
    );
    expect(ds0.stderr).toBe('');
    expect(ds0.code).toBe(0);
    expect(disksOf(ds0.stdout)).toEqual(
      new Map([
        [42, expected[42]],
        [44, expected[44]],
      ]),
    );

    const vmProbe = await runScript(probe('vm/monitor/monitor_ds_vm.rb'), [], sockets.host02);
    expect(vmProbe.code).toBe(0);
    const fromProbe = disksOf(vmProbe.stdout);
    expect([...fromProbe.keys()]).toEqual([42, 44, 7]);
    for (const [id, d] of fromProbe) expect(d, `VM ${id}`).toEqual(monitord.diskSizes(id));

    const systemProbe = await runScript(probe('host/system/monitor_ds.rb'), [], sockets.host02);
    expect(systemProbe.code).toBe(0);
    const fromSystemProbe = parseTemplate(systemProbe.stdout);
    const pushed = monitord.systemHost.get(HOST_ID) as Template;
    expect(dsIds(fromSystemProbe)).toEqual(dsIds(pushed));
    expect(scalar(fromSystemProbe, 'DS_LOCATION_TOTAL_MB')).toBe(scalar(pushed, 'DS_LOCATION_TOTAL_MB'));
  });

  it('one switch: an agent in push mode gives the probes and monitor_ds nothing to report', async () => {
    for (const file of [probe('vm/monitor/monitor_ds_vm.rb'), probe('host/system/monitor_ds.rb')]) {
      const r = await runScript(file, [], sockets.host01);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
        code: 0,
        stdout: '',
        stderr: '',
      });
    }
    const ds = await runScript(
      join(stack.remotesDir, 'tm', 'grpc', 'monitor_ds'),
      ['/var/lib/one/datastores/0'],
      sockets.host01,
    );
    expect(ds).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('bad calls get one line: monitor_ds without a path, a path outside the roots, no agent', async () => {
    const script = join(stack.remotesDir, 'tm', 'grpc', 'monitor_ds');
    const noArg = await runScript(script, [], sockets.host02);
    expect(noArg.code).toBe(1);
    expect(noArg.stderr).toBe('one-storage monitor_ds: usage: monitor_ds <datastore_path>\n');
    const outside = await runScript(script, ['/etc'], sockets.host02);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toMatch(
      /^one-storage monitor_ds: datastore path host02:\/etc: outside the datastore roots[^\n]*\n$/,
    );
    const noAgent = await runScript(probe('vm/monitor/monitor_ds_vm.rb'), [], join(base, 'nobody.sock'));
    expect(noAgent.code).toBe(0); // the rest of the probe group still counts
    expect(noAgent.stderr).toMatch(
      /^one-storage vm_probe: cannot reach the agent at .*nobody\.sock: ENOENT\n$/,
    );
  });

  it('a datastore removed between two cycles drops out of SYSTEM_HOST and the agent keeps running', async () => {
    rmSync(join(stack.datastoreDirs['host01'] as string, '100'), { recursive: true, force: true });
    const after = monitord.accepted.length;
    await monitord.waitFor('a SYSTEM_HOST without DS 100', () =>
      monitord.accepted
        .slice(after)
        .some((m) => m.type === 'SYSTEM_HOST' && dsIds(m.template).join() === '0,101'),
    );
    // Still sending disk data after the removal.
    const later = monitord.accepted.length;
    await monitord.waitFor('another MONITOR_VM', () =>
      monitord.accepted.slice(later).some((m) => m.type === 'MONITOR_VM'),
    );
    const client = new AgentClient(
      { name: 'host01', endpoint: `127.0.0.1:${stack.agentPort('host01')}`, certName: 'host01' },
      loadTls(pkiFiles(stack.pkiDir, 'coordinator'), 'test'),
    );
    try {
      const hello = await client.call('hello', {}, { deadlineMs: 5_000, requestId: 'monitor-e2e' });
      expect(hello.name).toBe('host01');
    } finally {
      client.close();
    }
  });
});
