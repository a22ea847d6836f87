import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NodeCgroup } from './node-cgroup.js';
import { run, SYSTEM_PATH, waitFor, type CommandOptions, type CommandResult } from './command.js';

/** A booted node answers `systemctl is-system-running` with one of these. */
const BOOTED_STATES = new Set(['running', 'degraded']);
const BOOT_TIMEOUT_MS = 90_000;
/** A clean poweroff of a node takes about 2 s; after this it is killed. */
const STOP_GRACE_MS = 30_000;

export interface ContainerSpec {
  /** Its hostname (and OpenNebula host name). */
  hostname: string;
  /** Machine name, unique on this machine ("osf-1a2b-host01"). */
  machine: string;
  /** The network namespace it joins (created by FleetNetwork). */
  netns: string;
  /** Its own directory for the overlay's upper layer, work dir, merged root and boot log. */
  dir: string;
}

/**
 * A Debian 12 node booted with systemd under systemd-nspawn: the cached root filesystem as the
 * overlay's read-only lower layer, its changes in its own upper layer, its network namespace
 * given. Commands run in it through nsenter (argv, no shell), into its init's namespaces.
 */
export class Container {
  private child: ChildProcess | undefined;
  private mounted = false;
  readonly root: string;
  readonly bootLog: string;
  private readonly cgroup: NodeCgroup;

  constructor(readonly spec: ContainerSpec) {
    this.root = join(spec.dir, 'root');
    this.bootLog = join(spec.dir, 'boot.log');
    this.cgroup = new NodeCgroup(spec.machine);
  }

  /** Mounts the overlay and writes what makes this node itself: hostname, hosts, root's ssh key. */
  async prepare(lower: string, files: { hosts: string; authorizedKey: string }): Promise<void> {
    const upper = join(this.spec.dir, 'upper');
    const work = join(this.spec.dir, 'work');
    for (const d of [upper, work, this.root]) await mkdir(d, { recursive: true });
    await run(
      'mount',
      ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, this.root],
      { what: `mount the root filesystem of ${this.spec.hostname} at ${this.root}` },
    );
    this.mounted = true;
    await writeFile(join(this.root, 'etc/hostname'), `${this.spec.hostname}\n`);
    await writeFile(join(this.root, 'etc/hosts'), files.hosts);
    const ssh = join(this.root, 'root/.ssh');
    await mkdir(ssh, { recursive: true, mode: 0o700 });
    await chmod(ssh, 0o700);
    await writeFile(join(ssh, 'authorized_keys'), files.authorizedKey, { mode: 0o600 });
  }

  /**
   * Boots the node (systemd as its PID 1) and waits until systemd reports the boot finished
   * (running, or degraded: then returns the failed units with their journal, for the log).
   */
  async boot(): Promise<string[]> {
    const log = openSync(this.bootLog, 'a');
    try {
      const argv = [
        '-D',
        this.root,
        '-b',
        '--register=no',
        '--keep-unit',
        `--network-namespace-path=/run/netns/${this.spec.netns}`,
        `--machine=${this.spec.machine}`,
        `--hostname=${this.spec.hostname}`,
        '--console=read-only',
      ];
      this.child = this.cgroup.spawnInside(() =>
        spawn('systemd-nspawn', argv, {
          stdio: ['ignore', log, log],
          env: { PATH: SYSTEM_PATH, LANG: 'C.UTF-8' },
        }),
      );
    } finally {
      closeSync(log);
    }
    const state = await waitFor(
      `boot of ${this.spec.hostname} (systemctl is-system-running; log ${this.bootLog})`,
      async () => {
        if (this.child?.exitCode !== null) throw new Error(`systemd-nspawn exited: ${this.logTail()}`);
        const r = await this.exec(['systemctl', 'is-system-running'], { allowFailure: true });
        const answer = r.stdout.trim();
        if (BOOTED_STATES.has(answer)) return answer;
        throw new Error(`systemd says "${answer}"`);
      },
      BOOT_TIMEOUT_MS,
    );
    return state === 'degraded' ? this.failedUnits() : [];
  }

  /** The units that failed, each with the last lines of its journal (why a boot was degraded). */
  async failedUnits(): Promise<string[]> {
    const failed = await this.exec(['systemctl', '--failed', '--no-legend', '--plain']);
    const units = failed.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/)[0] ?? '')
      .filter(Boolean);
    const out: string[] = [];
    for (const unit of units) {
      const j = await this.exec(['journalctl', '--no-pager', '-o', 'cat', '-n', '8', '-u', unit]);
      out.push(`${this.spec.hostname}: ${unit} failed:\n${j.stdout.trim()}`);
    }
    return out;
  }

  /** The PID of the node's init (systemd-nspawn's child), whose namespaces nsenter joins. */
  initPid(): number {
    const pid = this.child?.pid;
    if (pid === undefined || this.child?.exitCode !== null)
      throw new Error(`${this.spec.hostname} is not running`);
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      const first = Number(children.split(/\s+/)[0]);
      if (first > 0) return first;
    }
    throw new Error(`${this.spec.hostname}: systemd-nspawn (PID ${pid}) has no child yet`);
  }

  /** Runs argv inside the node as root, in all of its init's namespaces. */
  exec(argv: readonly string[], opts: Partial<CommandOptions> = {}): Promise<CommandResult> {
    return run('nsenter', ['-t', String(this.initPid()), '-a', '--', ...argv], {
      what: `on ${this.spec.hostname}: ${argv.join(' ')}`,
      ...opts,
    });
  }

  /** A path inside the node, as seen from this machine (its merged root directory). */
  path(inside: string): string {
    return join(this.root, inside);
  }

  /** The PID of its systemd-nspawn process (undefined when stopped). */
  pid(): number | undefined {
    return this.child && this.child.exitCode === null && this.child.signalCode === null
      ? this.child.pid
      : undefined;
  }

  /**
   * Powers the node off by its systemd-nspawn PID (SIGTERM: a clean shutdown of the container),
   * kills it after STOP_GRACE_MS, then unmounts its root and removes its directories.
   */
  async stop(): Promise<string[]> {
    const problems: string[] = [];
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        problems.push(`${this.spec.hostname}: no clean poweroff within ${STOP_GRACE_MS} ms, killed`);
        child.kill('SIGKILL');
      }, STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
    problems.push(...this.cgroup.remove());
    if (this.mounted) {
      await run('umount', [this.root], { what: `unmount the root of ${this.spec.hostname}` }).then(
        () => (this.mounted = false),
        (err: Error) => problems.push(err.message),
      );
    }
    // systemd-nspawn leaves its mount propagation directory behind when not registered.
    await rm(`/run/systemd/nspawn/propagate/${this.spec.machine}`, { recursive: true, force: true });
    if (!this.mounted) await rm(this.spec.dir, { recursive: true, force: true });
    return problems;
  }

  private logTail(): string {
    return readFileSync(this.bootLog, 'utf8').trim().split('\n').slice(-10).join('\n');
  }
}
