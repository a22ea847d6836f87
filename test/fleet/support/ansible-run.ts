import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { SYSTEM_PATH, type CommandResult } from './command.js';
import type { Fleet } from './fleet.js';
import { FLEET_NODES } from './fleet.js';
import { parsePlayRecap, type HostRecap } from './play-recap.js';

/** A converge of three nodes takes about a minute here; a stuck task gets this much. */
const PLAYBOOK_TIMEOUT_MS = 15 * 60_000;

export interface PlaybookRun extends CommandResult {
  /** The PLAY RECAP by host (empty when the run printed none). */
  recap: Record<string, HostRecap>;
  ms: number;
}

/**
 * The fleet's inventory as an operator would write it for these nodes: the front-end and two
 * hypervisors (groups `agents` = all of them), root over ssh, Node copied from the controller. The
 * CA directory and artifacts go to the run's directory, never into the checkout.
 */
export function fleetInventory(fleet: Fleet, vars: Readonly<Record<string, unknown>>): string {
  const hostsOf = (group: string): Record<string, { ansible_host: string }> =>
    Object.fromEntries(
      FLEET_NODES.filter((n) => n.group === group).map((n) => [
        n.hostname,
        { ansible_host: fleet.address(n.hostname) },
      ]),
    );
  return stringify({
    all: {
      vars: {
        ansible_user: 'root',
        ansible_python_interpreter: '/usr/bin/python3',
        one_storage_node_source: 'controller',
        one_storage_pki_dir: join(fleet.dir, 'pki'),
        one_storage_artifact_dir: join(fleet.dir, 'artifacts'),
        ...vars,
      },
      children: {
        frontend: { hosts: hostsOf('frontend') },
        hypervisors: { hosts: hostsOf('hypervisors') },
        bridges: { hosts: {} },
        backup_servers: { hosts: {} },
        agents: { children: { frontend: null, hypervisors: null, bridges: null, backup_servers: null } },
      },
    },
  });
}

/**
 * Runs `ansible-playbook -i INVENTORY PLAYBOOK` from deploy/ansible (its ansible.cfg applies) inside
 * the controller's network namespace, with the run's private ssh config, and returns its output and
 * recap; a failed run is returned too (the caller asserts), with its exit code.
 */
export async function runPlaybook(
  fleet: Fleet,
  checkout: string,
  playbook: string,
  inventory: string,
  extraArgs: readonly string[] = [],
): Promise<PlaybookRun> {
  const home = join(fleet.dir, 'ansible-home');
  await mkdir(join(home, 'tmp'), { recursive: true });
  const started = Date.now();
  const result = await fleet.ssh.inController(
    'ansible-playbook',
    ['-i', inventory, join(checkout, 'deploy/ansible', playbook), ...extraArgs],
    {
      what: `ansible-playbook ${playbook} from the controller`,
      allowFailure: true,
      timeoutMs: PLAYBOOK_TIMEOUT_MS,
      cwd: join(checkout, 'deploy/ansible'),
      env: {
        PATH: SYSTEM_PATH,
        HOME: home,
        LANG: 'C.UTF-8',
        ANSIBLE_HOME: home,
        ANSIBLE_LOCAL_TEMP: join(home, 'tmp'),
        ANSIBLE_SSH_ARGS: `-F ${fleet.ssh.configFile}`,
        ANSIBLE_PIPELINING: 'True',
        ANSIBLE_NOCOLOR: '1',
        ANSIBLE_RETRY_FILES_ENABLED: 'False',
        ANSIBLE_STDOUT_CALLBACK: 'default',
      },
    },
  );
  let recap: Record<string, HostRecap> = {};
  try {
    recap = parsePlayRecap(result.stdout);
  } catch {
    // no recap: the caller sees the exit code and the output
  }
  return { ...result, recap, ms: Date.now() - started };
}
