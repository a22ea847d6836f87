import type { ChildProcess } from 'node:child_process';
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../../common/src/files/atomic-file.js';
import { loadTls } from '../../../common/src/tls.js';
import { AgentClient } from '../../../coordinator/src/agents/agent-client.js';
import { installShims } from '../../../shims/src/install.js';
import { StackNetwork } from './netns/stack-network.js';
import type { StackOptions } from './stack-options.js';
import { startRelay } from './netns/start-relay.js';
import { startFakeOned, type FakeOned } from './fake-oned/fake-oned.js';
import { initCa, issueCertificate, pkiFiles } from '../../../common/src/pki/pki.js';
import {
  distEntry,
  freePorts,
  socketAccepts,
  startDaemon,
  stopDaemon,
  waitUntil,
  type RunAs,
} from './processes.js';

/** oned's DATASTORE_LOCATION as the driver calls name it; each host maps it to its own directory. */
export const ONED_DATASTORE_LOCATION = '/var/lib/one/datastores';
/** oned's VMS_LOCATION, where it writes each VM's context.sh. */
export const ONED_VMS_LOCATION = '/var/lib/one/vms';
export const DEMO_SESSION = 'oneadmin:demo-password';
export const DEFAULT_HOSTS = ['frontend', 'host01', 'host02'] as const;

export type { StackOptions } from './stack-options.js';

/** gRPC and data ports of every agent in network mode: each namespace has its own port space. */
const NETNS_AGENT_PORT = 7001;
const NETNS_DATA_PORT = 7002;
/** Where the coordinator in the front-end's namespace finds the fake oned's relay. */
const NETNS_ONED_ENDPOINT = '127.0.0.1:2634';

interface AgentProcess {
  name: string;
  port: number;
  /** Where this process dials the agent's gRPC port (a relay's UNIX socket in network mode). */
  endpoint: string;
  /** Network mode: the agent's namespace, and the relay from `endpoint` into it. */
  netns: { name: string; target: string; relay: ChildProcess | undefined } | undefined;
  config: string;
  log: string;
  runAs: RunAs | undefined;
  env: Readonly<Record<string, string>> | undefined;
  child: ChildProcess | undefined;
}

/** A running one-storage system on loopback: fake oned, coordinator, agents, installed shims. */
export class Stack {
  private constructor(
    readonly baseDir: string,
    readonly ownsBaseDir: boolean,
    readonly frontend: string,
    /** hostname → that host's directory standing for /var/lib/one/datastores. */
    readonly datastoreDirs: Readonly<Record<string, string>>,
    readonly remotesDir: string,
    readonly fixturesDir: string,
    readonly socket: string,
    readonly journalPath: string,
    readonly pkiDir: string,
    readonly oned: FakeOned,
    private readonly agents: Map<string, AgentProcess>,
    private coordinator: { child: ChildProcess; config: string; log: string } | undefined,
    private readonly network: StackNetwork | undefined,
    private readonly relays: ChildProcess[],
  ) {}

  static async start(opts: StackOptions = {}): Promise<Stack> {
    const hosts = opts.hosts ?? DEFAULT_HOSTS;
    const frontend = hosts[0];
    if (!frontend) throw new Error('a stack needs at least one host');
    const baseDir = opts.baseDir ?? (await mkdtemp(join(tmpdir(), 'one-storage-')));
    const dirs = {
      pki: join(baseDir, 'pki'),
      logs: join(baseDir, 'logs'),
      etc: join(baseDir, 'etc'),
      fixtures: join(baseDir, 'oned'),
      remotes: join(baseDir, 'remotes'),
      run: join(baseDir, 'run'),
    };
    for (const d of Object.values(dirs)) await mkdir(d, { recursive: true });
    // Made (namespaces created) only once the stack exists, so that stop() removes it on failure.
    const network = opts.network ? new StackNetwork(opts.network.prefix, hosts) : undefined;
    await initCa(dirs.pki);
    // Only the coordinator's certificate may call the agents' control RPCs; the hosts get agent ones.
    await issueCertificate(dirs.pki, 'coordinator', ['127.0.0.1'], false, 'coordinator');

    const datastoreDirs: Record<string, string> = {};
    const agents = new Map<string, AgentProcess>();
    // Every agent's two ports (gRPC, data path) are chosen here, all at once so no two are the same,
    // never left to the agent (port 0): an ephemeral port the kernel picks at an agent's start could
    // be one this stack has already handed to another listener.
    const ports = network
      ? hosts.flatMap(() => [NETNS_AGENT_PORT, NETNS_DATA_PORT])
      : await freePorts(2 * hosts.length);
    for (const [i, name] of hosts.entries()) {
      const address = network?.addressOf(name) ?? '127.0.0.1';
      await issueCertificate(dirs.pki, name, [...(network ? [address] : []), '127.0.0.1'], false, 'agent');
      const dsDir = opts.hostDirs?.[name] ?? join(baseDir, 'hosts', name, 'datastores');
      if (name === frontend) await mkdir(join(baseDir, 'hosts', name, 'vms'), { recursive: true });
      await mkdir(dsDir, { recursive: true });
      datastoreDirs[name] = dsDir;
      const [port, dataPort] = ports.slice(2 * i, 2 * i + 2) as [number, number];
      const files = pkiFiles(dirs.pki, name);
      const runAs = opts.agentRunAs?.(name);
      // The key is the owner's alone (0600): an agent started as another user must own it to read it.
      if (runAs) await chown(files.key, runAs.uid, runAs.gid);
      const config = join(dirs.etc, `agent-${name}.json`);
      await writeFileAtomic(
        config,
        JSON.stringify(
          {
            name,
            listen: `${address}:${port}`,
            data: {
              listen: `${address}:${dataPort}`,
              ...(opts.dataEncryption ? { encryption: opts.dataEncryption } : {}),
              ...(opts.dataRateLimit ? { rateLimitBytesPerSecond: opts.dataRateLimit } : {}),
              ...(opts.dataIdleTimeoutSeconds ? { idleTimeoutSeconds: opts.dataIdleTimeoutSeconds } : {}),
            },
            roots: [
              { location: ONED_DATASTORE_LOCATION, path: dsDir },
              // The front-end's agent also reads oned's VM directories (context.sh for context ISOs).
              ...(name === frontend
                ? [{ location: ONED_VMS_LOCATION, path: join(baseDir, 'hosts', name, 'vms') }]
                : []),
            ],
            tls: files,
            ...opts.agentSettings?.(name),
          },
          null,
          2,
        ),
      );
      agents.set(name, {
        name,
        port,
        endpoint: network ? `unix:${join(dirs.run, `agent-${name}.sock`)}` : `127.0.0.1:${port}`,
        netns: network
          ? { name: network.namespaceOf(name), target: `${address}:${port}`, relay: undefined }
          : undefined,
        config,
        log: join(dirs.logs, `agent-${name}.log`),
        runAs,
        env: opts.agentEnv?.(name),
        child: undefined,
      });
    }

    const onedSocket = `unix:${join(dirs.run, 'oned.sock')}`;
    const oned = await startFakeOned({
      fixturesDir: dirs.fixtures,
      session: DEMO_SESSION,
      ...(network ? { listen: onedSocket } : {}),
    });
    const oneAuth = join(dirs.etc, 'one_auth');
    await writeFileAtomic(oneAuth, `${DEMO_SESSION}\n`, { mode: 0o600 });
    const socket = join(dirs.run, 'coordinator.sock');
    const journalPath = join(baseDir, 'journal.db');
    const coordinatorConfig = join(dirs.etc, 'coordinator.json');
    await writeFileAtomic(
      coordinatorConfig,
      JSON.stringify(
        {
          socket,
          journal: journalPath,
          frontend,
          datastoreLocation: ONED_DATASTORE_LOCATION,
          remotesDir: dirs.remotes,
          oned: { endpoint: network ? NETNS_ONED_ENDPOINT : oned.endpoint, auth: oneAuth },
          agents: Object.fromEntries(
            [...agents.values()].map((a) => [
              a.name,
              {
                endpoint: a.netns?.target ?? `127.0.0.1:${a.port}`,
                ...(opts.hostIds?.[a.name] !== undefined ? { hostId: opts.hostIds[a.name] } : {}),
              },
            ]),
          ),
          tls: pkiFiles(dirs.pki, 'coordinator'),
          ...(opts.deadlines ? { deadlines: opts.deadlines } : {}),
          ...opts.coordinatorSettings,
        },
        null,
        2,
      ),
    );
    const stack = new Stack(
      baseDir,
      opts.baseDir === undefined,
      frontend,
      datastoreDirs,
      dirs.remotes,
      dirs.fixtures,
      socket,
      journalPath,
      dirs.pki,
      oned,
      agents,
      undefined,
      network,
      [],
    );
    try {
      await network?.create();
      if (network) {
        const ns = network.namespaceOf(frontend);
        stack.relays.push(
          await startRelay(ns, NETNS_ONED_ENDPOINT, onedSocket, join(dirs.logs, 'relay-oned.log')),
        );
      }
      await Promise.all(hosts.map((h) => stack.startAgent(h)));
      await stack.startCoordinator(coordinatorConfig, join(dirs.logs, 'coordinator.log'));
      await installShims({
        remotesDir: dirs.remotes,
        socketPath: socket,
        runtimeDir: dirname(distEntry('shims/src/run-shim.cjs')),
      });
    } catch (err) {
      await stack.stop();
      throw err;
    }
    return stack;
  }

  /** Starts (or restarts) the agent of `name` and waits until it answers Hello over mutual TLS. */
  async startAgent(name: string): Promise<void> {
    const agent = this.agents.get(name);
    if (!agent) throw new Error(`no agent ${name} in this stack`);
    if (agent.child && agent.child.exitCode === null && agent.child.signalCode === null) return;
    if (agent.netns && !agent.netns.relay) {
      const log = join(dirname(agent.log), `relay-${name}.log`);
      agent.netns.relay = await startRelay(agent.netns.name, agent.endpoint, agent.netns.target, log);
      this.relays.push(agent.netns.relay);
    }
    agent.child = startDaemon(
      distEntry('agent/src/main.js'),
      ['--config', agent.config],
      agent.log,
      agent.runAs,
      agent.netns?.name,
      agent.env,
    );
    const client = new AgentClient(
      { name, endpoint: agent.endpoint, certName: name },
      loadTls(pkiFiles(this.pkiDir, 'coordinator'), 'stack'),
    );
    try {
      await waitUntil(
        `agent ${name}`,
        async () => {
          await client.call('hello', {}, { deadlineMs: 1_000, requestId: 'stack-start' });
          return true;
        },
        agent.child,
        agent.log,
      );
    } finally {
      client.close();
    }
  }

  /** Kills the agent of `name` with SIGKILL, as a crash would, and waits for it to be gone. */
  async killAgent(name: string): Promise<void> {
    const child = this.agents.get(name)?.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Stops the agent of `name` (to test a host that is down). */
  async stopAgent(name: string): Promise<void> {
    const child = this.agents.get(name)?.child;
    if (child) await stopDaemon(child);
  }

  /** PID of the running agent of `name` (benchmarks read its CPU time); undefined when stopped. */
  agentPid(name: string): number | undefined {
    const child = this.agents.get(name)?.child;
    return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
  }

  agentPort(name: string): number {
    const agent = this.agents.get(name);
    if (!agent) throw new Error(`no agent ${name} in this stack`);
    return agent.port;
  }

  /** Where this process dials the agent of `name` (`unix:` path of its relay in network mode). */
  agentEndpoint(name: string): string {
    const agent = this.agents.get(name);
    if (!agent) throw new Error(`no agent ${name} in this stack`);
    return agent.endpoint;
  }

  /** Network mode: cuts the link of `host` (eth0 down in its namespace), or restores it. */
  async setLink(host: string, up: boolean): Promise<void> {
    if (!this.network) throw new Error('setLink needs a stack started with the network option');
    await this.network.setLink(host, up);
  }

  /**
   * Stops the coordinator with `signal` (SIGKILL: as if it crashed) and starts it again on the same
   * config and log; resolves once the new one accepts shims.
   */
  async restartCoordinator(
    signal: NodeJS.Signals = 'SIGTERM',
    /** Runs while no coordinator runs (a test writes what a crashed one would have left). */
    meanwhile?: () => Promise<void> | void,
  ): Promise<void> {
    const running = this.coordinator;
    if (!running) throw new Error('this stack has no coordinator to restart');
    if (running.child.exitCode === null && running.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => running.child.once('exit', () => resolve()));
      running.child.kill(signal);
      await exited;
    }
    await meanwhile?.();
    await this.startCoordinator(running.config, running.log);
  }

  private async startCoordinator(config: string, log: string): Promise<void> {
    const child = startDaemon(
      distEntry('coordinator/src/main.js'),
      ['--config', config],
      log,
      undefined,
      this.agents.get(this.frontend)?.netns?.name,
    );
    this.coordinator = { child, config, log };
    await waitUntil('coordinator', () => socketAccepts(this.socket), child, log);
  }

  /** The local directory standing for an oned-view path on `host`. */
  localPath(host: string, onedPath: string): string {
    const dir = this.datastoreDirs[host];
    if (!dir) throw new Error(`no host ${host} in this stack`);
    if (host === this.frontend && onedPath.startsWith(`${ONED_VMS_LOCATION}/`)) {
      return join(this.baseDir, 'hosts', host, 'vms', onedPath.slice(ONED_VMS_LOCATION.length + 1));
    }
    if (!onedPath.startsWith(`${ONED_DATASTORE_LOCATION}/`))
      throw new Error(`${onedPath} is not under ${ONED_DATASTORE_LOCATION}`);
    return join(dir, onedPath.slice(ONED_DATASTORE_LOCATION.length + 1));
  }

  /** The log file of every daemon the stack started (tests read them for unexpected errors). */
  logFiles(): string[] {
    return [
      ...[...this.agents.values()].map((a) => a.log),
      ...(this.coordinator ? [this.coordinator.log] : []),
    ];
  }

  /** PIDs of every process the stack started (for `demo --stay` and for cleanup checks). */
  pids(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const a of this.agents.values()) if (a.child?.pid) out[`agent-${a.name}`] = a.child.pid;
    if (this.coordinator?.child.pid) out['coordinator'] = this.coordinator.child.pid;
    return out;
  }

  /** Stops everything this stack started, by PID, and removes its directory if it made it. */
  async stop(opts: { keepFiles?: boolean } = {}): Promise<void> {
    if (this.coordinator) await stopDaemon(this.coordinator.child);
    await Promise.all(
      [...this.agents.values()].map((a) => (a.child ? stopDaemon(a.child) : Promise.resolve())),
    );
    await Promise.all(this.relays.map((r) => stopDaemon(r)));
    await this.oned.close();
    const problems = (await this.network?.destroy()) ?? [];
    if (problems.length > 0) throw new Error(`stack network cleanup: ${problems.join('; ')}`);
    if (this.ownsBaseDir && !opts.keepFiles) await rm(this.baseDir, { recursive: true, force: true });
  }
}
