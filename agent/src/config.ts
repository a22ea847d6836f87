import { isIP } from 'node:net';
import { Fields } from '../../common/src/config/fields.js';
import { readConfigFile } from '../../common/src/config/read-config-file.js';
import type { TlsFiles } from '../../common/src/tls.js';
import { MONITORD_DEFAULTS } from '../../common/src/monitord/defaults.js';
import { parseMetricsConfig, type MetricsConfig } from '../../common/src/metrics/metrics-config.js';
import { DEFAULT_LIBVIRT_URI } from './libvirt/virsh.js';
import { CHUNK_BYTES } from './transfer/extent-reader.js';
import { parseKeepalive, type Keepalive } from '../../common/src/config/keepalive.js';
import { parseMonitor, type MonitorConfig } from './config-monitor.js';

export {
  DEFAULT_MONITOR_SOCKET_MODE,
  DEFAULT_SYSTEM_SCHEDULE,
  DEFAULT_VM_SCHEDULE,
  MONITOR_REPORTS,
  type MonitorConfig,
  type MonitorReport,
} from './config-monitor.js';

export const DEFAULT_LOG_LEVEL = 'info';
/** Port 0: the kernel picks a free port; the agent reports the one it got. */
const ANY_FREE_PORT = 0;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** An OpenNebula hostname; it also names the certificate, so keep to what a hostname may hold. */
const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/;
/** A POSIX user or group name (useradd's default rule, with the trailing "$" of machine accounts). */
const ACCOUNT_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/;
/** Values of data.encryption (see AgentConfig.data.encryption). */
export const DATA_ENCRYPTIONS = ['tls', 'none'] as const;
export type DataEncryption = (typeof DATA_ENCRYPTIONS)[number];
export const DEFAULT_DATA_ENCRYPTION: DataEncryption = 'tls';
/**
 * The smallest data.rateLimitBytesPerSecond: slower, a paused transfer could sit silent long
 * enough to trip the data path's idle timeout.
 */
export const MIN_DATA_RATE_LIMIT = 64 * 1024;
/** data.idleTimeoutSeconds when the config names none: long enough for a slow disk to catch up. */
export const DEFAULT_DATA_IDLE_TIMEOUT_S = 120;
/**
 * Where ImportImage reads local uploads from when the config names none: OpenNebula's own default
 * SAFE_DIRS (docs/image-datastore.md#registering-an-image-cp-on-the-agent).
 */
export const DEFAULT_IMPORT_DIRS: readonly string[] = ['/var/tmp'];

/** How long an export URL lives unless ExportImage asks otherwise (export.ttlSeconds). */
export const DEFAULT_EXPORT_TTL_SECONDS = 3600;
/** The longest an export URL may live (export.ttlSeconds, ExportImage's ttl_seconds): one day. */
export const MAX_EXPORT_TTL_SECONDS = 24 * 3600;

/** One oned-view location (as oned spells it) and the directory that holds it on this node. */
export interface RootConfig {
  readonly location: string;
  readonly path: string;
}

/**
 * The export listener (docs/image-datastore.md#export-for-marketplaces): https, the agent's own
 * certificate, no client certificate; it serves the images ExportImage prepared, by token.
 */
export interface ExportConfig {
  readonly listen: string;
  /**
   * The URL base export URLs start with (`https://host:port`, or with a path prefix for a proxy
   * that strips it). Absent: the listen host (this agent's name when it is a wildcard) and the
   * port actually bound.
   */
  readonly advertise?: string;
  /** Lifetime of an export URL when ExportImage leaves ttl_seconds at 0. */
  readonly ttlSeconds: number;
}

export interface AgentConfig {
  /** The file the config came from, for messages. */
  readonly source: string;
  readonly name: string;
  /**
   * The user the agent runs as (oneadmin on an OpenNebula node: QEMU's user, owner of the disks).
   * Started as root, the agent reads its TLS files, then takes this user's uid, group and
   * supplementary groups (libvirt, kvm) before it listens; started as this user, it just runs.
   * Absent: it runs as whoever started it (as root, with a warning).
   */
  readonly user?: string;
  /** The primary group with `user` (default: that user's own primary group). */
  readonly group?: string;
  readonly listen: string;
  readonly data: {
    readonly listen: string;
    readonly advertise?: string;
    /**
     * How data-path bytes travel between agents. `tls` (the default): mutual TLS with the cloud's
     * certificates. `none`: the authenticated plaintext mode, for trusted storage networks where
     * TLS is the bottleneck: the peer still proves it holds the single-use ticket (delivered over
     * mutual-TLS gRPC) and the manifest and per-file SHA-256 digests are HMAC'd with a key derived
     * from it, so nothing altered or injected is accepted, but the bytes are readable on the wire.
     * A `none` receiver is refused by a `tls` sender with a one-line error; a `none` sender still
     * serves `tls` receivers.
     */
    readonly encryption: DataEncryption;
    /**
     * Caps each transfer this agent receives (bytes per second; a token bucket on the receiving
     * socket, so TCP slows the sender): keeps a migration from saturating a link. 0: unlimited.
     */
    readonly rateLimitBytesPerSecond: number;
    /**
     * A data connection on which nothing moves for this long is dropped (milliseconds; config
     * data.idleTimeoutSeconds, default 120): a receiver whose sender went silent (a cut link, a
     * stuck disk) fails and removes its temporary; a sender frees what a vanished receiver pinned.
     */
    readonly idleTimeoutMs: number;
  };
  /** Pings on the gRPC connections of the coordinator: a call whose caller vanished is cancelled. */
  readonly keepalive: Keepalive;
  readonly roots: readonly RootConfig[];
  readonly tls: Readonly<TlsFiles>;
  readonly monitord?: {
    readonly address: string;
    readonly port: number;
    /** monitord's NETWORK/PUBKEY (PEM): when set, payloads are RSA-encrypted as docs/opennebula/monitoring.md#wire-format says. */
    readonly publicKey?: string;
  };
  /** Disk and datastore monitoring; absent: off (no socket, no messages). */
  readonly monitor?: MonitorConfig;
  /**
   * The libvirt connection for live snapshots and backups of running VMs. `enabled: false` says
   * this node runs no VMs (a backup server): Health reports libvirt as not used instead of failing.
   */
  readonly libvirt: { readonly uri: string; readonly enabled: boolean };
  /** The https listener for marketplace exports; absent: ExportImage answers EXPORT_DISABLED. */
  readonly export?: ExportConfig;
  /**
   * Image registration (datastore cp): the only directories, besides the datastore roots, a local
   * source path may resolve into (then the datastore's SAFE_DIRS / RESTRICTED_DIRS apply).
   */
  readonly imports: { readonly dirs: readonly string[] };
  readonly log: { readonly level: string };
  /** The Prometheus /metrics listener (docs/metrics.md#configuration); absent: none. */
  readonly metrics?: MetricsConfig;
}

/** Reads, validates and freezes the agent's config; a bad setting throws CONFIG_INVALID naming its key. */
export function loadAgentConfig(file: string): AgentConfig {
  return parseAgentConfig(readConfigFile(file), file);
}

/** Validates an already-parsed config object (what loadAgentConfig does after reading the file). */
export function parseAgentConfig(value: unknown, source: string): AgentConfig {
  const f = Fields.root(source, value);
  const name = f.string('name');
  if (!HOST_NAME.test(name))
    f.fail('name', `must be a hostname (letters, digits, "." and "-"), got "${name}"`);
  const user = accountName(f, 'user');
  const group = accountName(f, 'group');
  if (group !== undefined && user === undefined) f.fail('group', 'needs user (the group goes with a user)');
  const listen = f.address('listen');
  const data = parseData(f, listen);
  const keepalive = parseKeepalive(f);
  const roots = parseRoots(f);
  const tls = parseTls(f);
  const monitord = parseMonitord(f);
  const monitor = parseMonitor(f);
  if (monitor?.report === 'push' && !monitord) {
    f.fail('monitord', 'is required when monitor.report is push (where does monitord listen?)');
  }
  const libvirt = parseLibvirt(f);
  const exportConfig = parseExport(f, [listen, data.listen]);
  const imports = parseImports(f);
  const log = parseLog(f);
  const metrics = parseMetricsConfig(f);
  f.done();
  return deepFreeze({
    source,
    name,
    ...(user !== undefined ? { user } : {}),
    ...(group !== undefined ? { group } : {}),
    listen,
    data,
    keepalive,
    roots,
    tls,
    ...(monitord ? { monitord } : {}),
    ...(monitor ? { monitor } : {}),
    libvirt,
    ...(exportConfig ? { export: exportConfig } : {}),
    imports,
    log,
    ...(metrics ? { metrics } : {}),
  });
}

function parseData(f: Fields, listen: string): AgentConfig['data'] {
  // By default the data path listens on the gRPC host: that address is already known to work.
  const fallback = `${hostOf(listen)}:${ANY_FREE_PORT}`;
  const d = f.object('data', false);
  if (!d)
    return {
      listen: fallback,
      encryption: DEFAULT_DATA_ENCRYPTION,
      rateLimitBytesPerSecond: 0,
      idleTimeoutMs: DEFAULT_DATA_IDLE_TIMEOUT_S * 1000,
    };
  const dataListen = d.address('listen', fallback);
  const advertise = d.optionalString('advertise');
  if (advertise !== undefined && !isIP(advertise) && !HOST_NAME.test(advertise)) {
    d.fail('advertise', `must be a host name or an IP address (no port), got "${advertise}"`);
  }
  const encryption = dataEncryption(d);
  const rateLimitBytesPerSecond = d.int('rateLimitBytesPerSecond', 0);
  if (rateLimitBytesPerSecond > 0 && rateLimitBytesPerSecond < MIN_DATA_RATE_LIMIT) {
    d.fail(
      'rateLimitBytesPerSecond',
      `must be 0 (unlimited) or at least ${MIN_DATA_RATE_LIMIT} (64 KiB/s), got ${rateLimitBytesPerSecond}`,
    );
  }
  const idleTimeoutMs = d.int('idleTimeoutSeconds', DEFAULT_DATA_IDLE_TIMEOUT_S, 1, 3600) * 1000;
  // A throttled receiver pauses its socket up to one chunk's worth of the rate: a pause must not
  // look like a silent sender.
  const longestPauseMs = rateLimitBytesPerSecond > 0 ? (CHUNK_BYTES / rateLimitBytesPerSecond) * 1000 : 0;
  if (idleTimeoutMs < 4 * longestPauseMs) {
    d.fail(
      'idleTimeoutSeconds',
      `must be at least ${Math.ceil((4 * longestPauseMs) / 1000)} at data.rateLimitBytesPerSecond ${rateLimitBytesPerSecond} (four of its longest pauses), got ${idleTimeoutMs / 1000}`,
    );
  }
  d.done();
  return advertise === undefined
    ? { listen: dataListen, encryption, rateLimitBytesPerSecond, idleTimeoutMs }
    : { listen: dataListen, advertise, encryption, rateLimitBytesPerSecond, idleTimeoutMs };
}

function parseRoots(f: Fields): RootConfig[] {
  const roots = f.list('roots').map((r) => {
    const location = r.absolutePath('location');
    if (location !== canonical(location)) {
      r.fail('location', `must be written as oned writes it, without "//", "." or ".." or a trailing "/"`);
    }
    const path = r.absolutePath('path', location);
    r.done();
    return { location, path };
  });
  const seen = new Set<string>();
  roots.forEach((r, i) => {
    if (seen.has(r.location)) f.fail(`roots[${i}].location`, `"${r.location}" is listed twice`);
    seen.add(r.location);
  });
  return roots;
}

function parseTls(f: Fields): TlsFiles {
  const t = f.object('tls') as Fields;
  const tls = { ca: t.absolutePath('ca'), cert: t.absolutePath('cert'), key: t.absolutePath('key') };
  t.done();
  return tls;
}

function parseMonitord(f: Fields): AgentConfig['monitord'] {
  const m = f.object('monitord', false);
  if (!m) return undefined;
  const address = m.string('address', MONITORD_DEFAULTS.address);
  const port = m.int('port', MONITORD_DEFAULTS.port, 1, 65535);
  const publicKey = m.has('publicKey') ? m.absolutePath('publicKey') : undefined;
  m.done();
  return publicKey === undefined ? { address, port } : { address, port, publicKey };
}

function parseLibvirt(f: Fields): AgentConfig['libvirt'] {
  const l = f.object('libvirt', false);
  if (!l) return { uri: DEFAULT_LIBVIRT_URI, enabled: true };
  const uri = l.string('uri', DEFAULT_LIBVIRT_URI);
  if (!/^[a-z][a-z0-9+]*:\/\/[^\s]*$/.test(uri))
    l.fail('uri', `must be a libvirt URI like ${DEFAULT_LIBVIRT_URI}, got "${uri}"`);
  const enabled = l.bool('enabled', true);
  l.done();
  return { uri, enabled };
}

/** `taken`: the agent's other listen addresses, which the export listener must not share. */
function parseExport(f: Fields, taken: readonly string[]): ExportConfig | undefined {
  const e = f.object('export', false);
  if (!e) return undefined;
  const listen = e.address('listen');
  if (portOf(listen) !== ANY_FREE_PORT && taken.some((t) => portOf(t) === portOf(listen))) {
    e.fail('listen', `port ${portOf(listen)} is already the agent's gRPC or data-path port`);
  }
  const advertise = e.optionalString('advertise');
  const ttlSeconds = e.int('ttlSeconds', DEFAULT_EXPORT_TTL_SECONDS, 1, MAX_EXPORT_TTL_SECONDS);
  e.done();
  return advertise === undefined
    ? { listen, ttlSeconds }
    : { listen, advertise: exportBase(e, advertise), ttlSeconds };
}

/**
 * export.advertise as the base of every export URL: `host:port` becomes `https://host:port`; a URL
 * must be https, name a port-bearing host and carry nothing but an optional path prefix.
 */
function exportBase(e: Fields, value: string): string {
  const refuse = (why: string): never =>
    e.fail('advertise', `must be host:port or an https:// URL base (${why}), got "${value}"`);
  const hostPort = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  if (hostPort) {
    const port = Number(hostPort[2]);
    if (port === ANY_FREE_PORT || port > 65535) refuse('a port clients can reach, 1 to 65535');
    return `https://${value}`;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return refuse('not a URL');
  }
  if (url.protocol !== 'https:') refuse('the listener speaks https only');
  if (url.username !== '' || url.password !== '') refuse('no user or password');
  if (url.search !== '' || url.hash !== '') refuse('no query or fragment');
  return `https://${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

function parseImports(f: Fields): AgentConfig['imports'] {
  const i = f.object('imports', false);
  if (!i) return { dirs: [...DEFAULT_IMPORT_DIRS] };
  const dirs = i.stringList('dirs', [...DEFAULT_IMPORT_DIRS]);
  if (dirs.length === 0) i.fail('dirs', 'must list at least one directory');
  dirs.forEach((dir, n) => {
    const key = `dirs[${n}]`;
    if (!dir.startsWith('/')) i.fail(key, `must be an absolute path, got "${dir}"`);
    if (dir !== canonical(dir))
      i.fail(key, `must be written without "//", "." or ".." or a trailing "/", got "${dir}"`);
    // "/" would let a cp read any file of the host that RESTRICTED_DIRS happens not to name.
    if (dir === '/') i.fail(key, 'must not be "/" (name the upload directories)');
    if (dirs.indexOf(dir) !== n) i.fail(key, `"${dir}" is listed twice`);
  });
  i.done();
  return { dirs };
}

function parseLog(f: Fields): AgentConfig['log'] {
  const l = f.object('log', false);
  if (!l) return { level: DEFAULT_LOG_LEVEL };
  const level = l.string('level', DEFAULT_LOG_LEVEL);
  if (!LOG_LEVELS.includes(level)) l.fail('level', `must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`);
  l.done();
  return { level };
}

function accountName(f: Fields, key: 'user' | 'group'): string | undefined {
  const value = f.optionalString(key);
  if (value !== undefined && !ACCOUNT_NAME.test(value)) {
    f.fail(key, `must be a ${key} name (letters, digits, "_", "-", "."), got "${value}"`);
  }
  return value;
}

function dataEncryption(d: Fields): DataEncryption {
  const value = d.string('encryption', DEFAULT_DATA_ENCRYPTION);
  const known = DATA_ENCRYPTIONS.find((e) => e === value);
  return known ?? d.fail('encryption', `must be one of ${DATA_ENCRYPTIONS.join(', ')}, got "${value}"`);
}

/** "host:port" → "host" (keeps IPv6 brackets). Fields.address has already checked the shape. */
function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':'));
}

/** "host:port" → port. */
function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** The same path with repeated slashes, "." and ".." components and a trailing slash removed. */
function canonical(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.' && p !== '..');
  return `/${parts.join('/')}`;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
