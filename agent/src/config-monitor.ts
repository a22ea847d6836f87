// The agent config's `monitor` section (docs/monitoring.md): who reports to monitord, the
// schedules, and how the disk scanner may trust what did not change.
import { validate as validCron } from 'node-cron';
import type { Fields } from '../../common/src/config/fields.js';
import { AGENT_MONITOR_SOCKET } from '../../common/src/monitord/defaults.js';
import { GROUP_SOCKET_MODE } from '../../common/src/sockets/socket-mode.js';
import { DEFAULT_MAX_WATCHES } from './monitor/dir-watches.js';

/** rw for owner and group: the probes run as oneadmin, a member of the socket's group. */
export const DEFAULT_MONITOR_SOCKET_MODE = GROUP_SOCKET_MODE;
/** OpenNebula's probe periods (docs/opennebula/monitoring.md#host-side-client): MONITOR_VM every 30 s, SYSTEM_HOST every 600 s. */
export const DEFAULT_VM_SCHEDULE = '*/30 * * * * *';
export const DEFAULT_SYSTEM_SCHEDULE = '0 */10 * * * *';
/** Who reports to monitord: the agent itself (push) or the kvm-probes.d probes asking the agent. */
export const MONITOR_REPORTS = ['push', 'probes'] as const;
export type MonitorReport = (typeof MONITOR_REPORTS)[number];

export interface MonitorConfig {
  /** push: the agent sends MONITOR_VM and SYSTEM_HOST itself; probes: the probes ask it and report. */
  readonly report: MonitorReport;
  /** The host's OpenNebula id; without it the coordinator's SetMonitorHost provides it. */
  readonly hostId?: number;
  readonly socket: string;
  readonly socketMode: number;
  /** node-cron expressions (with seconds) for the two message kinds. */
  readonly schedules: { readonly vm: string; readonly system: string };
  /** Every Nth scan re-reads every file instead of trusting unchanged directories. */
  readonly fullRefreshEvery: number;
  /** inotify watches on the datastore, VM and snapshot directories (false: stat every cycle). */
  readonly watch: boolean;
  /** At most this many watches (each about 1.4 KB of agent memory); beyond, directories are stat'ed. */
  readonly maxWatches: number;
}

/** The `monitor` section, or undefined when the config has none (monitoring off). */
export function parseMonitor(f: Fields): MonitorConfig | undefined {
  const m = f.object('monitor', false);
  if (!m) return undefined;
  const report = m.string('report', 'probes');
  const known = MONITOR_REPORTS.find((r) => r === report);
  if (!known) m.fail('report', `must be one of ${MONITOR_REPORTS.join(', ')}, got "${report}"`);
  const hostId = m.has('hostId') ? m.int('hostId', 0, 0, 2 ** 31 - 1) : undefined;
  const socket = m.absolutePath('socket', AGENT_MONITOR_SOCKET);
  const socketMode = m.int('socketMode', DEFAULT_MONITOR_SOCKET_MODE, 0, 0o777);
  const s = m.object('schedules', false);
  const cron = (key: string, fallback: string): string => {
    const value = s ? s.string(key, fallback) : fallback;
    if (!validCron(value)) (s ?? m).fail(key, `must be a cron expression (node-cron), got "${value}"`);
    return value;
  };
  const schedules = { vm: cron('vm', DEFAULT_VM_SCHEDULE), system: cron('system', DEFAULT_SYSTEM_SCHEDULE) };
  s?.done();
  const fullRefreshEvery = m.int('fullRefreshEvery', 10, 1, 10_000);
  const watch = m.bool('watch', true);
  const maxWatches = m.int('maxWatches', DEFAULT_MAX_WATCHES, 0, 1_000_000);
  m.done();
  return {
    report: known as MonitorReport,
    ...(hostId !== undefined ? { hostId } : {}),
    socket,
    socketMode,
    schedules,
    fullRefreshEvery,
    watch,
    maxWatches,
  };
}
