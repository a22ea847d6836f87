import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type CommandOptions, type CommandResult } from './command.js';

/** Arguments passed to ssh's remote shell must need no quoting (ssh joins them into one string). */
const PLAIN_ARG = /^[A-Za-z0-9_./:=@,+%-]+$/;

/**
 * The controller's ssh identity and client config, private to one test run: a fresh ed25519 key
 * authorized for root on every node, its own known_hosts (a node's key is accepted on first use)
 * and master connections kept in the run's directory. Everything ssh does runs inside the
 * controller's network namespace.
 */
export class SshAccess {
  private constructor(
    readonly dir: string,
    readonly controllerNetns: string,
    readonly configFile: string,
    readonly publicKey: string,
  ) {}

  static async create(dir: string, controllerNetns: string): Promise<SshAccess> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const key = join(dir, 'id_ed25519');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'one-storage-fleet-test', '-f', key], {
      what: `generate the controller's ssh key ${key}`,
    });
    const configFile = join(dir, 'ssh_config');
    await writeFile(
      configFile,
      [
        'Host *',
        '  User root',
        `  IdentityFile ${key}`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile ${join(dir, 'known_hosts')}`,
        '  StrictHostKeyChecking accept-new',
        '  BatchMode yes',
        '  ConnectTimeout 5',
        '  ControlMaster auto',
        `  ControlPath ${join(dir, 'cm-%C')}`,
        '  ControlPersist 300',
        '  LogLevel ERROR',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const publicKey = await readFile(`${key}.pub`, 'utf8');
    return new SshAccess(dir, controllerNetns, configFile, publicKey);
  }

  /** Runs a command on `address` as root over ssh from the controller's namespace. */
  ssh(address: string, argv: readonly string[], opts: Partial<CommandOptions> = {}): Promise<CommandResult> {
    const bad = argv.find((a) => !PLAIN_ARG.test(a));
    if (bad !== undefined) throw new Error(`ssh ${address}: argument "${bad}" would need shell quoting`);
    return this.inController('ssh', ['-F', this.configFile, address, '--', ...argv], {
      what: `ssh ${address} ${argv.join(' ')}`,
      ...opts,
    });
  }

  /** Runs a program inside the controller's network namespace. */
  inController(command: string, args: readonly string[], opts: CommandOptions): Promise<CommandResult> {
    return run('ip', ['netns', 'exec', this.controllerNetns, command, ...args], opts);
  }

  /** Ends the master connections to `addresses` (ours and Ansible's share them). */
  async closeMasters(addresses: readonly string[]): Promise<void> {
    for (const address of addresses) {
      await this.inController('ssh', ['-F', this.configFile, '-O', 'exit', address], {
        what: `close the ssh master connection to ${address}`,
        allowFailure: true,
        timeoutMs: 10_000,
      }).catch(() => undefined);
    }
  }
}
