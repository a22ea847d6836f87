import { StorageError } from '../../../common/src/errors.js';

/** A driver argument of the form host:path, e.g. host01:/var/lib/one/datastores/0/42/disk.0. */
export interface HostPath {
  host: string;
  path: string;
}

/** OpenNebula's is_disk: the path names a disk file rather than the VM directory. */
const DISK_PATTERN = /\/disk\.(\d+)$/;
const HOSTNAME_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/**
 * OpenNebula's arg_path: repeated slashes collapsed, trailing slashes removed
 * (oned writes SOURCE as /var/lib/one//datastores/1/abc).
 */
export function cleanPath(path: string): string {
  const collapsed = path.replace(/\/{2,}/g, '/');
  return collapsed.length > 1 ? collapsed.replace(/\/+$/, '') : collapsed;
}

/** Parses `host:path` (arg_host / arg_path). `field` names the argument in the error. */
export function parseHostPath(arg: string | undefined, field: string): HostPath {
  if (arg === undefined || arg === '')
    throw new StorageError('INVALID_ARGUMENT', `missing argument ${field} (host:path)`);
  const colon = arg.indexOf(':');
  const host = colon > 0 ? arg.slice(0, colon) : '';
  const path = colon > 0 ? arg.slice(colon + 1) : '';
  if (!HOSTNAME_PATTERN.test(host) || !path.startsWith('/')) {
    throw new StorageError('BAD_HOST_PATH', `argument ${field} "${arg}" is not host:/absolute/path`);
  }
  return { host, path: cleanPath(path) };
}

/** A plain absolute path argument (MVDS's SOURCE has no host part). */
export function parseAbsolutePath(arg: string | undefined, field: string): string {
  if (arg === undefined || arg === '')
    throw new StorageError('INVALID_ARGUMENT', `missing argument ${field} (path)`);
  if (!arg.startsWith('/'))
    throw new StorageError('INVALID_ARGUMENT', `argument ${field} "${arg}" is not an absolute path`);
  return cleanPath(arg);
}

/** The disk id when the path names disk.N, else undefined (a VM directory). */
export function diskIdOf(path: string): number | undefined {
  const m = DISK_PATTERN.exec(path);
  return m ? Number(m[1]) : undefined;
}

export function parseId(arg: string | undefined, field: string): number {
  if (arg === undefined || !/^-?\d{1,10}$/.test(arg)) {
    throw new StorageError('INVALID_ARGUMENT', `argument ${field} "${arg ?? ''}" is not a number`);
  }
  return Number(arg);
}

/** `0:1:3`, the disk ids joined by ':' (oned's BACKUP_CONFIG/DISK_IDS order). */
export function parseDiskIds(arg: string): number[] {
  const parts = arg.split(':');
  if (arg === '' || parts.some((p) => !/^\d{1,6}$/.test(p))) {
    throw new StorageError('INVALID_ARGUMENT', `argument disk_ids "${arg}" is not disk ids joined by ':'`);
  }
  return parts.map(Number);
}

export function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function formatHostPath(hp: HostPath): string {
  return `${hp.host}:${hp.path}`;
}
