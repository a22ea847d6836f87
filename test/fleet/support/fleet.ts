import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTools, SYSTEM_PATH } from './command.js';
import { Container } from './container.js';
import { FleetNetwork } from './fleet-network.js';
import { cachedRootfs } from './rootfs-cache.js';
import { SshAccess } from './ssh-access.js';

export type FleetGroup = 'frontend' | 'hypervisors';

export interface NodeSpec {
  hostname: string;
  tag: string;
  octet: number;
  group: FleetGroup;
}

/** The guide's three nodes: oned's front-end and two hypervisors. */
export const FLEET_NODES: readonly NodeSpec[] = [
  { hostname: 'frontend', tag: 'fe', octet: 10, group: 'frontend' },
  { hostname: 'host01', tag: 'h1', octet: 11, group: 'hypervisors' },
  { hostname: 'host02', tag: 'h2', octet: 12, group: 'hypervisors' },
];
/** The Ansible controller: a namespace of its own on the fleet network (no container). */
const CONTROLLER = { tag: 'ctl', octet: 2 };

export const FLEET_TOOLS = [
  'debootstrap',
  'systemd-nspawn',
  'ansible-playbook',
  'ip',
  'iptables',
  'nsenter',
  'ssh',
];

/**
 * Three booted Debian 12 nodes on a private network (FleetNetwork), reachable by ssh as root from
 * the controller's namespace. stop() powers every node off by its PID and removes the network, the
 * mounts and the directories; if the test process is interrupted, a signal handler does the same
 * synchronously as a last resort.
 */
export class Fleet {
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.emergencyCleanup();
    process.kill(process.pid, signal);
  };

  private constructor(
    readonly dir: string,
    readonly network: FleetNetwork,
    readonly ssh: SshAccess,
    private readonly containers: Map<string, Container>,
  ) {}

  static async start(log: (line: string) => void): Promise<Fleet> {
    requireTools(FLEET_TOOLS);
    const lower = await cachedRootfs(log);
    const id = randomBytes(2).toString('hex');
    const dir = await mkdtemp(join(tmpdir(), `osf-${id}-`));
    const network = new FleetNetwork(`osf-${id}`);
    const containers = new Map<string, Container>();
    const ssh = await SshAccess.create(join(dir, 'ssh'), network.namespaceOf(CONTROLLER.tag));
    const fleet = new Fleet(dir, network, ssh, containers);
    process.once('SIGINT', fleet.onSignal);
    process.once('SIGTERM', fleet.onSignal);
    try {
      await network.create([...FLEET_NODES, CONTROLLER]);
      const hosts = [
        '127.0.0.1 localhost',
        ...FLEET_NODES.map((n) => `${FleetNetwork.address(n)} ${n.hostname}`),
        '',
      ].join('\n');
      for (const node of FLEET_NODES) {
        const c = new Container({
          hostname: node.hostname,
          machine: `osf-${id}-${node.hostname}`,
          netns: network.namespaceOf(node.tag),
          dir: join(dir, node.hostname),
        });
        containers.set(node.hostname, c);
        await c.prepare(lower, { hosts, authorizedKey: ssh.publicKey });
      }
      const started = Date.now();
      const degraded = await Promise.all([...containers.values()].map((c) => c.boot()));
      for (const why of degraded.flat()) log(`booted degraded: ${why}`);
      // The controller reaches every node over the fleet network (also fills known_hosts).
      for (const node of FLEET_NODES) await ssh.ssh(FleetNetwork.address(node), ['true']);
      log(`fleet booted in ${Date.now() - started} ms: ${FLEET_NODES.map((n) => n.hostname).join(', ')}`);
      return fleet;
    } catch (err) {
      const problems = await fleet.stop();
      if (problems.length > 0) log(`cleanup after a failed start: ${problems.join('; ')}`);
      throw err;
    }
  }

  node(hostname: string): Container {
    const c = this.containers.get(hostname);
    if (!c) throw new Error(`no node ${hostname} in the fleet`);
    return c;
  }

  /** Blocks (or unblocks) TCP connections from node `from` to `port` on node `hostname`. */
  refuseTcp(hostname: string, port: number, from: string, refuse: boolean): Promise<void> {
    const n = FLEET_NODES.find((x) => x.hostname === hostname);
    if (!n) throw new Error(`no node ${hostname} in the fleet`);
    return this.network.refuseTcp(n.tag, port, this.address(from), refuse);
  }

  address(hostname: string): string {
    const n = FLEET_NODES.find((x) => x.hostname === hostname);
    if (!n) throw new Error(`no node ${hostname} in the fleet`);
    return FleetNetwork.address(n);
  }

  /** Stops everything this fleet started; returns what could not be cleaned (empty when all went). */
  async stop(): Promise<string[]> {
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
    const problems: string[] = [];
    await this.ssh.closeMasters(FLEET_NODES.map((n) => FleetNetwork.address(n)));
    for (const c of this.containers.values()) problems.push(...(await c.stop()));
    problems.push(...(await this.network.destroy()));
    if (problems.length === 0) await rm(this.dir, { recursive: true, force: true });
    return problems;
  }

  /** Synchronous last resort on SIGINT/SIGTERM: kill our nspawn PIDs, unmount, drop namespaces. */
  private emergencyCleanup(): void {
    const quiet = { stdio: 'ignore' as const, env: { PATH: SYSTEM_PATH } };
    for (const c of this.containers.values()) {
      const pid = c.pid();
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
    }
    for (const c of this.containers.values()) {
      try {
        execFileSync('umount', ['--lazy', c.root], quiet);
      } catch {
        // not mounted
      }
    }
    for (const ns of this.network.namespaces()) {
      try {
        execFileSync('ip', ['netns', 'delete', ns], quiet);
      } catch {
        // already gone
      }
    }
  }
}
