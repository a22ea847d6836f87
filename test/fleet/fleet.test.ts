// The real multi-host test of the Ansible rollout: three Debian 12 nodes booted with systemd (systemd-nspawn)
// on a private network in namespaces, converged by deploy/ansible/site.yml run from a controller
// namespace, then the guide's VM lifecycle through the installed shims, then a rolling upgrade.
// Runs as root (CI does); a missing tool fails the test, naming the script that installs it.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetInventory, runPlaybook, type PlaybookRun } from './support/ansible-run.js';
import { buildArtifact, type Artifact } from './support/artifact.js';
import { Fleet, FLEET_NODES } from './support/fleet.js';
import { FAKE_ONED_PORT, startFrontendServices } from './support/frontend-services.js';
import { runFleetLifecycle } from './support/fleet-lifecycle.js';
import {
  installOpenNebulaStandIn,
  ONEADMIN_ID,
  ONED_CONF,
  STOCK_VMM_EXECRC,
  VMM_EXECRC,
} from './support/opennebula-standin.js';
import { agentProcess, installedVersion, statusLines } from './support/node-checks.js';

const CHECKOUT = resolve('.');
const HOSTS = FLEET_NODES.map((n) => n.hostname);
const MINUTES = 60_000;
/** one_storage_agent_port's default. */
const AGENT_PORT = 7001;
/** The name of upgrade.yml's play that runs with serial: 1. */
const SERIAL_PLAY = 'Upgrade one host at a time';
const log = (line: string): void => console.log(`[fleet] ${line}`);

let fleet: Fleet;
let inventory: string;
let artifact: Artifact;

/** Fails with the playbook's output tail when it did not succeed on every host. */
function expectSucceeded(r: PlaybookRun, what: string): void {
  const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-60).join('\n');
  expect(r.code, `${what} failed:\n${tail}`).toBe(0);
  expect(Object.keys(r.recap).sort(), `${what}: hosts in PLAY RECAP`).toEqual([...HOSTS].sort());
  for (const [host, counts] of Object.entries(r.recap)) {
    expect({ host, failed: counts.failed, unreachable: counts.unreachable }).toEqual({
      host,
      failed: 0,
      unreachable: 0,
    });
  }
}

describe('fleet: site.yml on a front-end and two hypervisors (Debian 12, systemd-nspawn)', () => {
  beforeAll(async () => {
    if (process.getuid?.() !== 0)
      throw new Error('the fleet test runs as root (network namespaces, systemd-nspawn)');
    fleet = await Fleet.start(log);
    for (const n of FLEET_NODES)
      await installOpenNebulaStandIn(fleet.node(n.hostname), n.group === 'frontend');
    artifact = await buildArtifact(CHECKOUT, join(fleet.dir, 'artifacts'));
    inventory = join(fleet.dir, 'inventory.yml');
    await writeFile(
      inventory,
      fleetInventory(fleet, {
        one_storage_artifact: artifact.path,
        // The fake oned the lifecycle starts on the front-end (frontend-services.ts).
        one_storage_oned_endpoint: `127.0.0.1:${FAKE_ONED_PORT}`,
      }),
    );
  }, 20 * MINUTES);

  afterAll(async () => {
    if (!fleet) return;
    const problems = await fleet.stop();
    expect(problems, 'fleet cleanup').toEqual([]);
  }, 5 * MINUTES);

  it(
    'converges every node from the controller',
    async () => {
      const r = await runPlaybook(fleet, CHECKOUT, 'site.yml', inventory);
      log(`site.yml converged in ${r.ms} ms`);
      expectSucceeded(r, 'site.yml (first run)');
      const changed = Object.values(r.recap).map((c) => c.changed);
      expect(Math.min(...changed), 'the first run installs something on every host').toBeGreaterThan(0);
    },
    15 * MINUTES,
  );

  it(
    'a second run reports changed=0 on every host',
    async () => {
      const r = await runPlaybook(fleet, CHECKOUT, 'site.yml', inventory);
      log(`site.yml second run in ${r.ms} ms`);
      expectSucceeded(r, 'site.yml (second run)');
      const changedTasks = r.stdout.split('\n').filter((l) => l.startsWith('changed:'));
      expect(
        Object.fromEntries(Object.entries(r.recap).map(([h, c]) => [h, c.changed])),
        `tasks that changed on the second run:\n${changedTasks.join('\n')}`,
      ).toEqual(Object.fromEntries(HOSTS.map((h) => [h, 0])));
    },
    15 * MINUTES,
  );

  it('every agent is active (running) as oneadmin, the coordinator too on the front-end', async () => {
    for (const host of HOSTS) {
      const agent = await agentProcess(fleet.node(host), 'one-storage-agent');
      expect({ host, ...agent }).toMatchObject({ host, state: 'active (running)', user: 'oneadmin' });
    }
    const coordinator = await agentProcess(fleet.node('frontend'), 'one-storage-coordinator');
    expect(coordinator.state).toBe('active (running)');
  });

  it('oned.conf on the front-end declares the drivers; vmm_execrc allows their live snapshots', async () => {
    const conf = await readFile(fleet.node('frontend').path(ONED_CONF), 'utf8');
    expect(conf).toMatch(/TM_MAD\s*=\s*\[[^\]]*-d [^\]"]*\bgrpc\b/);
    expect(conf).toMatch(/TM_MAD_CONF\s*=\s*\[[^\]]*NAME\s*=\s*"grpc"/);
    expect(conf).toMatch(/DS_MAD_CONF\s*=\s*\[[^\]]*NAME\s*=\s*"grpc"/);
    const vmmExecrc = fleet.node('frontend').path(VMM_EXECRC);
    expect(await readFile(vmmExecrc, 'utf8')).toBe(
      STOCK_VMM_EXECRC.replace('qemu-ssh"', 'qemu-ssh kvm-grpc kvm-grpc_qcow2 qemu-grpc qemu-grpc_qcow2"'),
    );
    const st = await stat(vmmExecrc);
    expect({ mode: st.mode & 0o777, uid: st.uid, gid: st.gid }).toEqual({
      mode: 0o640,
      uid: 0,
      gid: ONEADMIN_ID,
    });
  });

  it('one-storage status on the front-end answers for every agent over mutual TLS', async () => {
    const lines = await statusLines(fleet.node('frontend'));
    expect(lines).toEqual(HOSTS.map((h) => `${h} ok version ${artifact.version}`).sort());
  });

  it(
    'runs the guide VM lifecycle through the installed shims, data checked on each node',
    async () => {
      await startFrontendServices(fleet.node('frontend'));
      const report = await runFleetLifecycle(fleet, 42, log);
      expect(Object.keys(report.persistentDiskSums)).toEqual([
        'CREATE host01',
        'STOP frontend',
        'RESUME host01',
        'MIGRATE host02',
      ]);
      for (const host of HOSTS) expect(await installedVersion(fleet.node(host))).toBe(artifact.version);
    },
    10 * MINUTES,
  );

  it(
    'upgrade.yml rolls N+1 out one node at a time; every agent answers with it; the lifecycle still works',
    async () => {
      const next = await buildArtifact(CHECKOUT, join(fleet.dir, 'artifacts'), nextPatch(artifact.version));
      const r = await runPlaybook(fleet, CHECKOUT, 'upgrade.yml', inventory, [
        '-e',
        `one_storage_artifact=${next.path}`,
      ]);
      log(`upgrade.yml to ${next.version} in ${r.ms} ms`);
      expectSucceeded(r, `upgrade.yml to ${next.version}`);
      expect(upgradeOrder(r.stdout), 'one host per batch, in inventory order').toEqual(HOSTS);
      for (const host of HOSTS) {
        expect({ host, version: await installedVersion(fleet.node(host)) }).toEqual({
          host,
          version: next.version,
        });
        const agent = await agentProcess(fleet.node(host), 'one-storage-agent');
        expect({ host, ...agent }).toMatchObject({ host, state: 'active (running)', user: 'oneadmin' });
      }
      expect(await statusLines(fleet.node('frontend'))).toEqual(
        HOSTS.map((h) => `${h} ok version ${next.version}`).sort(),
      );
      await runFleetLifecycle(fleet, 43, log);
      artifact = next;
    },
    15 * MINUTES,
  );

  it(
    'a node whose agent does not answer stops the rollout: the nodes after it keep the old version',
    async () => {
      const old = artifact.version;
      const next = await buildArtifact(CHECKOUT, join(fleet.dir, 'artifacts'), nextPatch(old));
      const args = ['-e', `one_storage_artifact=${next.path}`, '-e', 'one_storage_upgrade_health_retries=1'];
      // host01's firewall refuses the front-end on the agent port: its new agent runs, the coordinator cannot reach it.
      await fleet.refuseTcp('host01', AGENT_PORT, 'frontend', true);
      let r: PlaybookRun;
      try {
        r = await runPlaybook(fleet, CHECKOUT, 'upgrade.yml', inventory, args);
      } finally {
        await fleet.refuseTcp('host01', AGENT_PORT, 'frontend', false);
      }
      log(`upgrade.yml with host01's agent port blocked for the front-end: exit ${r.code} in ${r.ms} ms`);
      expect(r.code, 'the rollout fails').not.toBe(0);
      expect(r.recap['host01']?.failed, 'host01 failed its health check').toBeGreaterThan(0);
      expect(upgradeOrder(r.stdout), 'no batch after host01').toEqual(['frontend', 'host01']);
      const versions = Object.fromEntries(
        await Promise.all(HOSTS.map(async (h) => [h, await installedVersion(fleet.node(h))] as const)),
      );
      expect(versions).toEqual({ frontend: next.version, host01: next.version, host02: old });
      expect(await statusLines(fleet.node('frontend'), ['--agent', 'host02'])).toEqual([
        `host02 ok version ${old}`,
      ]);

      // With the port open again, the same rollout completes.
      const again = await runPlaybook(fleet, CHECKOUT, 'upgrade.yml', inventory, args);
      expectSucceeded(again, `upgrade.yml to ${next.version} after the fix`);
      expect(await statusLines(fleet.node('frontend'))).toEqual(
        HOSTS.map((h) => `${h} ok version ${next.version}`).sort(),
      );
    },
    15 * MINUTES,
  );
});

/** The hosts of the serial play, batch by batch, as ansible-playbook announces the batches' first task. */
function upgradeOrder(output: string): string[] {
  const order: string[] = [];
  const lines = output.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`PLAY [${SERIAL_PLAY}]`));
  if (start < 0) throw new Error(`upgrade.yml printed no "PLAY [${SERIAL_PLAY}]"`);
  for (const line of lines.slice(start + 1)) {
    // "ok: [host01]", "fatal: [host01 -> frontend(198.51.100.10)]: ..." (a task delegated to the front-end)
    const m = /^(?:ok|changed|fatal|skipping): \[([^\]\s]+)/.exec(line);
    if (m?.[1] && !order.includes(m[1])) order.push(m[1]);
  }
  return order;
}

/** The next patch version: 0.1.0 → 0.1.1 (the upgrade's N+1). */
function nextPatch(version: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (!m) throw new Error(`cannot bump version ${version}: not MAJOR.MINOR.PATCH`);
  return `${m[1]}.${m[2]}.${Number(m[3]) + 1}`;
}
