import { homedir, userInfo } from 'node:os';
import { Fields } from '../../common/src/config/fields.js';
import { readConfigFile } from '../../common/src/config/read-config-file.js';
import type { TlsFiles } from '../../common/src/tls.js';
import { MONITORD_DEFAULTS } from '../../common/src/monitord/defaults.js';
import { GROUP_SOCKET_MODE } from '../../common/src/sockets/socket-mode.js';
import { parseMetricsConfig, type MetricsConfig } from '../../common/src/metrics/metrics-config.js';
import { parseKeepalive, type Keepalive } from '../../common/src/config/keepalive.js';

/** oned's default DATASTORE_LOCATION; every host uses the same one (docs/opennebula/settings.md#datastore-location). */
export const DEFAULT_DATASTORE_LOCATION = '/var/lib/one/datastores';
/** Where oned keeps its driver scripts on the front-end (system-wide install). */
export const DEFAULT_REMOTES_DIR = '/var/lib/one/remotes';
/** A cheap control call (mkdir, stat, delete) that takes longer than this is stuck. */
const DEFAULT_CONTROL_DEADLINE_MS = 60_000;
/** A transfer of a large image on a slow link can take hours; it still must end. */
const DEFAULT_TRANSFER_DEADLINE_MS = 6 * 3600_000;
const DEFAULT_ONED_DEADLINE_MS = 15_000;
/** Agents running long steps are asked how far they have got this often. */
const DEFAULT_PROGRESS_POLL_MS = 2_000;
/** A progress line goes into the VM log this often per long call: enough to see it move, not a flood. */
const DEFAULT_PROGRESS_LOG_INTERVAL_S = 30;
/** Shims are run by oneadmin; the coordinator's group must be able to connect. */
const DEFAULT_SOCKET_MODE = GROUP_SOCKET_MODE;
/** A group name as groupadd accepts it, or a numeric gid. */
const GROUP_PATTERN = /^([A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|\d{1,10})$/;

export interface AgentEndpoint {
  /** OpenNebula hostname (the host part of driver arguments). */
  name: string;
  /** host:port of the agent's gRPC listener. */
  endpoint: string;
  /** Name its certificate carries (default: the hostname). */
  certName: string;
  /** The host's OpenNebula id: sent to the agent (SetMonitorHost) for its monitoring messages. */
  hostId?: number;
}

export interface CoordinatorConfig {
  socket: string;
  socketMode: number;
  /**
   * Group (name or gid) that owns the socket, so that oned's shims (run as oneadmin) may connect.
   * Unset: oneadmin when that group exists, else the coordinator's own group (shim-server/socket-group.ts).
   */
  socketGroup: string | undefined;
  journal: string;
  /** Name of the front-end's agent: transfer lines name the front-end by oned's hostname. */
  frontend: string;
  /** Other names oned may use for the front-end (e.g. its FQDN). */
  frontendAliases: string[];
  datastoreLocation: string;
  /** oned's remotes directory: other TM drivers' migrate hooks are run from there (docs/opennebula/tm-actions.md#migrate-hook-fan-out). */
  remotesDir: string;
  oned: { endpoint: string; auth: string; deadlineMs: number };
  agents: Map<string, AgentEndpoint>;
  tls: TlsFiles;
  deadlines: { controlMs: number; transferMs: number };
  /** Pings on the agents' channels: a call to an agent cut off by the network fails within interval + timeout. */
  keepalive: Keepalive;
  /** The image datastore driver `grpc` (docs/image-datastore.md). */
  imageDatastore: {
    /**
     * Directories no image is registered from, whatever a datastore's SAFE_DIRS say about them
     * being restricted: OpenNebula's implicit RESTRICTED_DIRS, its own state, configuration and
     * oneadmin's home (docs/image-datastore.md#cp). A datastore's RESTRICTED_DIRS are added.
     */
    implicitRestrictedDirs: string[];
  };
  /** Where shared-datastore VM disk sizes go (MONITOR_VM, host -1): monitord on the front-end. */
  monitord: { address: string; port: number; publicKey?: string };
  /** Progress of long steps: how often agents are asked, how often a line goes to the VM log. */
  progress: { pollMs: number; logIntervalMs: number };
  log: { level: string };
  /** The Prometheus /metrics listener (docs/metrics.md#configuration); absent: none. */
  metrics?: MetricsConfig;
  source: string;
}

export function loadCoordinatorConfig(file: string): Readonly<CoordinatorConfig> {
  return parseCoordinatorConfig(readConfigFile(file), file);
}

export function parseCoordinatorConfig(raw: unknown, source: string): Readonly<CoordinatorConfig> {
  const f = Fields.root(source, raw);
  const agents = new Map<string, AgentEndpoint>();
  for (const [name, a] of f.entries('agents')) {
    const hostId = a.has('hostId') ? a.int('hostId', 0, 0, 2 ** 31 - 1) : undefined;
    agents.set(name, {
      name,
      endpoint: a.address('endpoint'),
      certName: a.string('certName', name),
      ...(hostId !== undefined ? { hostId } : {}),
    });
    a.done();
  }
  const frontend = f.string('frontend');
  if (!agents.has(frontend)) f.fail('frontend', `names "${frontend}", which is not one of the agents`);
  const oned = f.object('oned') as Fields;
  const tls = f.object('tls') as Fields;
  const deadlines = f.object('deadlines', false);
  const log = f.object('log', false);
  const progress = f.object('progress', false);
  const monitord = parseMonitord(f);
  const imageDatastore = parseImageDatastore(f);
  const metrics = parseMetricsConfig(f);
  const keepalive = parseKeepalive(f);
  const config: CoordinatorConfig = {
    socket: f.absolutePath('socket'),
    socketMode: f.int('socketMode', DEFAULT_SOCKET_MODE, 0, 0o777),
    socketGroup: parseSocketGroup(f),
    journal: f.absolutePath('journal'),
    frontend,
    frontendAliases: f.stringList('frontendAliases'),
    datastoreLocation: f.absolutePath('datastoreLocation', DEFAULT_DATASTORE_LOCATION),
    remotesDir: f.absolutePath('remotesDir', DEFAULT_REMOTES_DIR),
    oned: {
      endpoint: oned.address('endpoint', '127.0.0.1:2634'),
      auth: oned.absolutePath('auth'),
      deadlineMs: oned.int('deadlineMs', DEFAULT_ONED_DEADLINE_MS, 100),
    },
    agents,
    tls: { ca: tls.absolutePath('ca'), cert: tls.absolutePath('cert'), key: tls.absolutePath('key') },
    deadlines: {
      controlMs: deadlines?.int('controlMs', DEFAULT_CONTROL_DEADLINE_MS, 100) ?? DEFAULT_CONTROL_DEADLINE_MS,
      transferMs:
        deadlines?.int('transferMs', DEFAULT_TRANSFER_DEADLINE_MS, 100) ?? DEFAULT_TRANSFER_DEADLINE_MS,
    },
    keepalive,
    imageDatastore,
    monitord,
    progress: {
      pollMs: progress?.int('pollMs', DEFAULT_PROGRESS_POLL_MS, 100, 600_000) ?? DEFAULT_PROGRESS_POLL_MS,
      logIntervalMs:
        (progress?.int('logIntervalSeconds', DEFAULT_PROGRESS_LOG_INTERVAL_S, 1, 86_400) ??
          DEFAULT_PROGRESS_LOG_INTERVAL_S) * 1000,
    },
    log: { level: log?.string('level', 'info') ?? 'info' },
    ...(metrics ? { metrics } : {}),
    source,
  };
  oned.done();
  tls.done();
  deadlines?.done();
  log?.done();
  progress?.done();
  f.done();
  return Object.freeze(config);
}

function parseSocketGroup(f: Fields): string | undefined {
  if (!f.has('socketGroup')) return undefined;
  const group = f.string('socketGroup');
  if (!GROUP_PATTERN.test(group)) f.fail('socketGroup', `"${group}" is not a group name or gid`);
  return group;
}

/**
 * OpenNebula's implicit RESTRICTED_DIRS in its system-wide layout: `/var/lib/one/`, `/etc/one/` and
 * the home of the user the driver runs as (oneadmin; the coordinator runs as that user).
 */
export function defaultImplicitRestrictedDirs(): string[] {
  let home: string;
  try {
    home = userInfo().homedir;
  } catch {
    home = homedir();
  }
  return ['/var/lib/one/', '/etc/one/', `${home.replace(/\/+$/, '')}/`];
}

function parseImageDatastore(f: Fields): CoordinatorConfig['imageDatastore'] {
  const d = f.object('imageDatastore', false);
  const dirs =
    d?.stringList('implicitRestrictedDirs', defaultImplicitRestrictedDirs()) ??
    defaultImplicitRestrictedDirs();
  const relative = dirs.find((dir) => !dir.startsWith('/'));
  if (d && relative !== undefined) d.fail('implicitRestrictedDirs', `"${relative}" is not an absolute path`);
  d?.done();
  return { implicitRestrictedDirs: dirs };
}

const DEFAULT_MONITORD = MONITORD_DEFAULTS;

function parseMonitord(f: Fields): CoordinatorConfig['monitord'] {
  const m = f.object('monitord', false);
  if (!m) return { ...DEFAULT_MONITORD };
  const address = m.string('address', DEFAULT_MONITORD.address);
  const port = m.int('port', DEFAULT_MONITORD.port, 1, 65535);
  const publicKey = m.has('publicKey') ? m.absolutePath('publicKey') : undefined;
  m.done();
  return publicKey === undefined ? { address, port } : { address, port, publicKey };
}
