import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import type { AgentConfig } from '../config.js';

/** Who root is. */
const ROOT_UID = 0;
/** getent's exit code for "no such key" (the user or group is not in the system's databases). */
const GETENT_NOT_FOUND = 2;
/** getent answers from local files or a directory service at once; a hung NSS must not hang start-up. */
const GETENT_TIMEOUT_MS = 10_000;

/** The user the agent becomes, as the system's user databases (NSS: files, LDAP, ...) name it. */
export interface AgentUser {
  readonly name: string;
  readonly uid: number;
  /** The primary group: config `group`, or the user's own. */
  readonly gid: number;
  readonly home: string;
}

/** What start-up does about the agent's identity (docs/security.md, "The agent's user"). */
export type PrivilegePlan =
  /** Started as root with `user`: read the TLS files, then become `user` before listening. */
  | { readonly kind: 'drop'; readonly user: AgentUser }
  /** Already the configured user, or no `user` and not root: nothing to do. */
  | { readonly kind: 'keep' }
  /** Root without `user`: runs, and says once that it should not. */
  | { readonly kind: 'root' };

/** The identity calls of Node's process (absent on Windows, hence optional). */
type PosixProcess = NodeJS.Process & {
  initgroups?: (user: string | number, extraGroup: string | number) => void;
  setgid?: (id: string | number) => void;
  setuid?: (id: string | number) => void;
};

export interface ProcessIds {
  readonly uid: number;
  readonly gid: number;
}

/**
 * Decides what start-up does about privileges. Started as another non-root user than `user`, the
 * agent refuses: it could not become `user`, and what it created would belong to the wrong owner.
 */
export async function planPrivileges(
  config: AgentConfig,
  current: ProcessIds = currentIds(),
): Promise<PrivilegePlan> {
  if (config.user === undefined) return current.uid === ROOT_UID ? { kind: 'root' } : { kind: 'keep' };
  const user = await lookUpUser(config);
  if (current.uid === ROOT_UID) return user.uid === ROOT_UID ? { kind: 'keep' } : { kind: 'drop', user };
  if (current.uid !== user.uid) {
    throw new StorageError(
      'CONFIG_INVALID',
      `config ${config.source}: user: the agent runs as uid ${current.uid}, neither root nor "${user.name}" (uid ${user.uid}): start it as root or as ${user.name}`,
    );
  }
  if (current.gid !== user.gid) {
    throw new StorageError(
      'CONFIG_INVALID',
      `config ${config.source}: group: the agent runs with gid ${current.gid}, not ${config.group ?? `${user.name}'s group`} (gid ${user.gid}): start it with that group or as root`,
    );
  }
  return { kind: 'keep' };
}

/**
 * Becomes `user` for good: its supplementary groups (libvirt, kvm: how it reaches libvirt and
 * /dev/kvm), its primary group, then its uid (real, effective and saved, so there is no way back).
 * Only root may do the first two, so the order is fixed. Tools the agent runs inherit the user's
 * HOME (virsh reads its client config there), as with `su -` or systemd's User=.
 */
export function dropPrivileges(user: AgentUser): void {
  const posix = process as PosixProcess;
  try {
    if (!posix.initgroups || !posix.setgid || !posix.setuid) throw new Error('not a POSIX system');
    posix.initgroups(user.name, user.gid);
    posix.setgid(user.gid);
    posix.setuid(user.uid);
  } catch (err) {
    throw new StorageError(
      'INTERNAL',
      `cannot become user ${user.name} (uid ${user.uid}, gid ${user.gid}): ${(err as Error).message}`,
      { cause: err },
    );
  }
  const ids = [process.getuid?.(), process.geteuid?.(), process.getgid?.(), process.getegid?.()];
  if (ids.join() !== [user.uid, user.uid, user.gid, user.gid].join()) {
    throw new StorageError('INTERNAL', `became uid/euid/gid/egid ${ids.join('/')}, not user ${user.name}`);
  }
  process.env['HOME'] = user.home;
  process.env['USER'] = user.name;
  process.env['LOGNAME'] = user.name;
}

function currentIds(): ProcessIds {
  return { uid: process.getuid?.() ?? ROOT_UID, gid: process.getgid?.() ?? ROOT_UID };
}

/** `user` (and `group`) through getent, so users from LDAP or SSSD work as local ones do. */
async function lookUpUser(config: AgentConfig): Promise<AgentUser> {
  const name = config.user ?? '';
  const passwd = await getent('passwd', name, config, 'user');
  // name:password:uid:gid:gecos:home:shell
  const [, , uid, gid, , home] = passwd.split(':');
  const group =
    config.group === undefined ? gid : (await getent('group', config.group, config, 'group')).split(':')[2];
  if (uid === undefined || group === undefined || home === undefined) {
    throw new StorageError(
      'CONFIG_INVALID',
      `config ${config.source}: user: getent passwd ${name}: unreadable entry`,
    );
  }
  return { name, uid: Number(uid), gid: Number(group), home };
}

async function getent(
  database: 'passwd' | 'group',
  key: string,
  config: AgentConfig,
  field: string,
): Promise<string> {
  try {
    const { stdout } = await runTool('getent', [database, '--', key], {
      what: `look up ${database} ${key}`,
      timeoutMs: GETENT_TIMEOUT_MS,
    });
    return stdout.split('\n')[0] ?? '';
  } catch (err) {
    const cause = (err as { cause?: { code?: unknown } }).cause;
    if (cause?.code === GETENT_NOT_FOUND) {
      throw new StorageError(
        'CONFIG_INVALID',
        `config ${config.source}: ${field}: no ${field} "${key}" on this host`,
      );
    }
    throw err;
  }
}
