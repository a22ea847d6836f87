import { execFile } from 'node:child_process';
import { StorageError } from '../../../common/src/errors.js';

/** oned runs the shims as oneadmin: its group owns the socket unless configured otherwise. */
export const DEFAULT_SOCKET_GROUP = 'oneadmin';
/** getent's exit status for "no such entry". */
const GETENT_NOT_FOUND = 2;
const GETENT_TIMEOUT_MS = 10_000;

/**
 * The gid to chown the shim socket to: the configured `socketGroup` (name or gid; a name that does not
 * exist is a startup error naming the key), else oneadmin's group when it exists, else the
 * coordinator's own group.
 */
export async function resolveSocketGroup(configured: string | undefined, source: string): Promise<number> {
  if (configured !== undefined && /^\d+$/.test(configured)) return Number(configured);
  const gid = await lookupGroup(configured ?? DEFAULT_SOCKET_GROUP);
  if (gid !== undefined) return gid;
  if (configured !== undefined) {
    throw new StorageError(
      'CONFIG_INVALID',
      `config ${source}: socketGroup: no group "${configured}" on this host`,
    );
  }
  return process.getgid?.() ?? 0;
}

/** The gid of group `name` through NSS (getent: /etc/group, LDAP, sssd), or undefined. */
function lookupGroup(name: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    execFile('getent', ['group', name], { timeout: GETENT_TIMEOUT_MS, env: { LANG: 'C' } }, (err, stdout) => {
      if (err) {
        if ((err as { code?: unknown }).code === GETENT_NOT_FOUND) return resolve(undefined);
        return reject(new Error(`cannot look up group "${name}" (getent): ${err.message.split('\n')[0]}`));
      }
      // name:password:gid:members
      const gid = Number(stdout.split(':')[2]);
      resolve(Number.isInteger(gid) ? gid : undefined);
    });
  });
}
