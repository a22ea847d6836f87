/**
 * A private sshd on a loopback port for the benchmarks' OpenNebula baselines (not a test fixture,
 * not for production): its own host key and one authorized client key, all in `dir`, and the ssh
 * argument prefix oned's ssh would use against it (OpenNebula's ControlMaster settings).
 *
 *   const ssh = await startSshServer(join(work, 'ssh'));
 *   spawn('ssh', [...ssh.args, 'true']);
 *   await ssh.stop();
 *
 * stop() ends the ControlMaster and the sshd it started, by PID, and removes nothing else.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { runTool } from '../../common/src/tools/run-tool.js';
import { freePort } from '../../cli/src/demo/processes.js';

export interface SshServer {
  /** ssh options and destination: `ssh ...args command` runs `command` on the private sshd. */
  readonly args: readonly string[];
  readonly port: number;
  /** PIDs of what it started (sshd; the ControlMaster forks from ssh and exits with `-O exit`). */
  readonly pid: number;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;
/** sshd's privilege-separation directory; Debian's package creates it only when the service runs. */
const PRIVSEP_DIR = '/run/sshd';

export async function startSshServer(dir: string): Promise<SshServer> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await mkdir(PRIVSEP_DIR, { recursive: true, mode: 0o755 });
  const hostKey = join(dir, 'host_key');
  const clientKey = join(dir, 'client_key');
  await runTool('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  await runTool('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey]);
  const authorized = join(dir, 'authorized_keys');
  await writeFile(authorized, await readFile(`${clientKey}.pub`), { mode: 0o600 });
  const port = await freePort();
  const sshdOptions = {
    ListenAddress: '127.0.0.1',
    HostKey: hostKey,
    AuthorizedKeysFile: authorized,
    StrictModes: 'no',
    PermitRootLogin: 'prohibit-password',
    PasswordAuthentication: 'no',
    UsePAM: 'no',
    PidFile: join(dir, 'sshd.pid'),
    // bash skips root's ~/.bashrc (pyenv init, ~120 ms here) when SHLVL is set: docs/toolchain.md#benchmark-anchors.
    SetEnv: 'SHLVL=1',
    // A burst of calls shares one ControlMaster: sshd's default of 10 sessions per connection
    // (and 10 unauthenticated connections) would refuse the rest (bench/concurrency).
    MaxSessions: '100',
    MaxStartups: '100',
  };
  const sshd: ChildProcess = spawn(
    '/usr/sbin/sshd',
    [
      '-D',
      '-e',
      '-f',
      '/dev/null',
      '-p',
      String(port),
      ...Object.entries(sshdOptions).flatMap(([k, v]) => ['-o', `${k}=${v}`]),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  sshd.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve) => sshd.once('exit', () => resolve()));
  const stopSshd = async (): Promise<void> => {
    if (sshd.exitCode === null && sshd.signalCode === null) {
      sshd.kill('SIGTERM');
      await exited;
    }
  };
  try {
    await waitForPort(port, sshd, () => stderr);
  } catch (err) {
    await stopSshd();
    throw err;
  }

  // OpenNebula's client side: its ssh wrapper adds ControlMaster=auto; oneadmin's ssh config sets
  // the rest (docs/opennebula/settings.md#ssh-connection-reuse).
  const args = [
    '-o',
    'ControlMaster=auto',
    '-o',
    'ControlPersist=70s',
    '-o',
    `ControlPath=${join(dir, 'ctl-M-%C.sock')}`,
    '-o',
    'ServerAliveInterval=10',
    '-o',
    'StrictHostKeyChecking=accept-new',
    '-o',
    `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
    '-o',
    'BatchMode=yes',
    '-o',
    'LogLevel=ERROR',
    '-i',
    clientKey,
    '-p',
    String(port),
    'root@127.0.0.1',
  ];
  try {
    await runTool('ssh', [...args, 'true'], { what: 'warm the ssh ControlMaster' });
  } catch (err) {
    await stopSshd();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    args,
    port,
    pid: sshd.pid ?? 0,
    stop: () =>
      (stopping ??= (async () => {
        // The master is a forked ssh, not our child: ask it to exit through its control socket.
        await runTool('ssh', ['-O', 'exit', ...args]).catch(() => undefined);
        await stopSshd();
      })()),
  };
}

/** PID of the ssh ControlMaster the server's args reuse (ssh -O check names it). */
export async function controlMasterPid(ssh: SshServer): Promise<number | undefined> {
  const r = await runTool('ssh', ['-O', 'check', ...ssh.args]).catch(() => undefined);
  const m = /pid=(\d+)/.exec(r?.stderr ?? '');
  return m ? Number(m[1]) : undefined;
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${log().trim()}`);
    const open = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port} within ${READY_TIMEOUT_MS} ms`);
}
