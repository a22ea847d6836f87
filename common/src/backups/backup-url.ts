/**
 * The pseudo-URLs a `grpc_backup` datastore hands out for the disks of a backup
 * (docs/backups.md#pseudo-urls), in the grammar of OpenNebula's rsync and restic URLs:
 *
 *   grpc_backup://<ds_id>/<bj_id or empty>/<inc>:<bid>[,<inc>:<bid>...]/<absolute path>
 *
 * e.g. `grpc_backup://100/3/0:8a3454,1:f6e63e/var/lib/one/datastores/100/6/f6e63e/disk.0.1`.
 * The chain lists the increments to apply, oldest first; the path is the disk file of the last
 * one, as the backup server sees it through oned's eyes (BASE_PATH/<vmid>/<bid>/disk.<disk>.<inc>).
 * Parsing is strict: a URL is untrusted input (an image's PATH can be set by any user), so every
 * part is checked against the grammar and the path against the chain it claims.
 */
import { StorageError } from '../errors.js';

export const BACKUP_URL_SCHEME = 'grpc_backup';
const PREFIX = `${BACKUP_URL_SCHEME}://`;
/** Longest URL accepted: a path of PATH_MAX and a long chain fit. */
export const MAX_BACKUP_URL_CHARS = 8192;
/** A backup id: what the backup action makes (hex), or what OpenNebula's rsync makes (6 hex). */
const BACKUP_ID = /^[0-9a-f]{6,32}$/;
const UINT = /^(0|[1-9]\d{0,9})$/;
/** A path segment: no blanks, quotes, shell or glob characters. */
const SEGMENT = /^[A-Za-z0-9._+-]+$/;
/** disk.<disk_id>.<increment_id> */
const DISK_FILE = /^disk\.(0|[1-9]\d{0,9})\.(0|[1-9]\d{0,9})$/;

export interface ChainLink {
  /** The increment id oned gave it (BACKUP_INCREMENTS/INCREMENT/ID; 0 for a FULL backup). */
  inc: number;
  /** The backup id: the increment's SOURCE, its directory name on the backup server. */
  bid: string;
}

export interface BackupUrl {
  dsId: number;
  /** BACKUP_JOB_ID, or undefined when the backup was not made by a backup job. */
  backupJobId: number | undefined;
  /** Oldest first; never empty. */
  chain: ChainLink[];
  /** Absolute oned-view path of the last increment's disk file. */
  path: string;
  /** From the path: .../<vmid>/<bid>/disk.<diskId>.<inc> */
  vmId: number;
  diskId: number;
}

/** Whether `url` is meant for this driver (its scheme), before it is checked. */
export function isBackupUrl(url: string): boolean {
  return url.startsWith(PREFIX);
}

export function formatChain(chain: readonly ChainLink[]): string {
  return chain.map((l) => `${l.inc}:${l.bid}`).join(',');
}

export function formatBackupUrl(u: {
  dsId: number;
  backupJobId: number | undefined;
  chain: readonly ChainLink[];
  path: string;
}): string {
  return `${PREFIX}${u.dsId}/${u.backupJobId ?? ''}/${formatChain(u.chain)}${u.path}`;
}

/** Parses and checks a pseudo-URL; one INVALID_ARGUMENT line naming `what` and the fault otherwise. */
export function parseBackupUrl(url: string, what = 'backup URL'): BackupUrl {
  const bad = (why: string): StorageError =>
    new StorageError('INVALID_ARGUMENT', `${what} ${shown(url)} ${why}`);
  if (url.length > MAX_BACKUP_URL_CHARS) throw bad(`is longer than ${MAX_BACKUP_URL_CHARS} characters`);
  if (!isBackupUrl(url)) throw bad(`does not start with ${PREFIX}`);
  const rest = url.slice(PREFIX.length);
  // <ds>/<bj>/<chain>/<path...>: the path keeps its own slashes.
  const first = rest.indexOf('/');
  const second = first < 0 ? -1 : rest.indexOf('/', first + 1);
  const third = second < 0 ? -1 : rest.indexOf('/', second + 1);
  if (third < 0) throw bad('is not grpc_backup://<ds>/<backup job>/<inc>:<id>,.../<path>');
  const ds = rest.slice(0, first);
  const bj = rest.slice(first + 1, second);
  const chainText = rest.slice(second + 1, third);
  const path = rest.slice(third);
  if (!UINT.test(ds)) throw bad(`has no datastore id: ${shown(ds)}`);
  if (bj !== '' && !UINT.test(bj)) throw bad(`has a backup job id that is no number: ${shown(bj)}`);
  const chain = chainText.split(',').map((link) => {
    const [inc, bid, more] = link.split(':');
    if (
      more !== undefined ||
      inc === undefined ||
      bid === undefined ||
      !UINT.test(inc) ||
      !BACKUP_ID.test(bid)
    )
      throw bad(`has a chain entry that is not <increment>:<backup id>: ${shown(link)}`);
    return { inc: Number(inc), bid };
  });
  for (let i = 1; i < chain.length; i++) {
    if ((chain[i] as ChainLink).inc <= (chain[i - 1] as ChainLink).inc)
      throw bad('has a chain whose increments do not go up');
  }
  const segments = path.split('/').slice(1);
  if (segments.some((s) => s === '' || s === '.' || s === '..' || !SEGMENT.test(s)))
    throw bad('has a path that is not a plain absolute path');
  const [vm, bid, file] = segments.slice(-3);
  const disk = DISK_FILE.exec(file ?? '');
  const last = chain[chain.length - 1] as ChainLink;
  if (!disk || vm === undefined || !UINT.test(vm) || bid === undefined)
    throw bad('has a path that is not <base>/<vm id>/<backup id>/disk.<disk id>.<increment>');
  if (bid !== last.bid || Number(disk[2]) !== last.inc)
    throw bad(`has a path that is not the file of the chain's last increment ${last.inc}:${last.bid}`);
  return {
    dsId: Number(ds),
    backupJobId: bj === '' ? undefined : Number(bj),
    chain,
    path,
    vmId: Number(vm),
    diskId: Number(disk[1]),
  };
}

/**
 * The disk file of every increment of the chain, oldest first: each increment's directory beside
 * the last one's (`<base>/<vmid>/<bid>/disk.<disk>.<inc>`).
 */
export function chainFiles(u: BackupUrl): string[] {
  const vmDir = u.path.split('/').slice(0, -2).join('/');
  return u.chain.map((l) => `${vmDir}/${l.bid}/disk.${u.diskId}.${l.inc}`);
}

function shown(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
}
