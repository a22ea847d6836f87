// `one-storage doctor --host H`: one agent as the coordinator sees it. A quick Health call first,
// for the clock (the agent's now_ms against ours at the middle of the round trip, so the error is
// at most half of it), then Health with deep=true for the tools, versions, roots and certificate.
import { randomUUID } from 'node:crypto';
import type { TlsMaterial } from '../../../common/src/tls.js';
import { AgentRegistry } from '../../../coordinator/src/agents/agent-registry.js';
import type { CoordinatorConfig } from '../../../coordinator/src/config.js';
import type { HealthResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { skewText } from '../status/agent-report.js';
import { humanAge, humanBytes } from '../status/human-units.js';
import {
  DATASTORE_FAILED_USED_PERCENT,
  DATASTORE_WARNING_USED_PERCENT,
  SKEW_FAILED_MS,
  SKEW_WARNING_MS,
} from '../status/status-thresholds.js';
import { diagnoseTls } from '../status/tls-probe.js';
import { fail, ok, warn, type DoctorCheck } from './doctor-check.js';

export async function hostChecks(
  config: Readonly<CoordinatorConfig>,
  tls: TlsMaterial,
  host: string,
  timeoutMs: number,
): Promise<DoctorCheck[]> {
  const registry = new AgentRegistry(config.agents, tls, config.frontend, config.frontendAliases);
  const client = registry.get(host);
  const opts = { deadlineMs: timeoutMs, requestId: `doctor-${randomUUID()}` };
  try {
    const sentMs = Date.now();
    let quick: HealthResponse;
    try {
      quick = await client.call('health', { deep: false }, opts);
    } catch (err) {
      const why = (await diagnoseTls(client.agent, tls, timeoutMs)).why;
      return [
        fail(
          'agent',
          `${host}: ${err instanceof Error ? err.message : String(err)}; ${why}`,
          `start one-storage-agent on ${host} (journalctl -u one-storage-agent says why it stopped), or reissue its certificate`,
        ),
      ];
    }
    const receivedMs = Date.now();
    const checks: DoctorCheck[] = [
      ok(
        'agent',
        `${host} at ${client.agent.endpoint}, version ${quick.version}, answered in ${receivedMs - sentMs} ms`,
      ),
      clockCheck(quick.nowMs - (sentMs + receivedMs) / 2, receivedMs - sentMs),
      ...quick.datastores.map((d) => datastoreCheck(d, host)),
      monitoringCheck(quick, receivedMs),
    ];
    let deep: HealthResponse;
    try {
      deep = await client.call('health', { deep: true }, opts);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      return [...checks, fail('deep checks', why, `raise --timeout-ms, or see the agent's log on ${host}`)];
    }
    for (const c of deep.checks) {
      checks.push(
        !c.ok
          ? fail(c.name, c.detail, c.fix)
          : c.warning
            ? warn(c.name, c.detail, c.fix)
            : ok(c.name, c.detail),
      );
    }
    return checks;
  } finally {
    registry.close();
  }
}

function datastoreCheck(d: HealthResponse['datastores'][number], host: string): DoctorCheck {
  const name = `datastore ${d.location}`;
  if (!d.ok)
    return fail(
      name,
      d.detail,
      `create ${d.root} for the agent's user, or correct roots in ${host}'s agent config`,
    );
  const used = d.totalBytes > 0 ? Math.round((100 * (d.totalBytes - d.freeBytes)) / d.totalBytes) : 0;
  const detail = `${d.root}: ${humanBytes(d.freeBytes)} free of ${humanBytes(d.totalBytes)} (${used} % used)`;
  const fix = `free space in ${d.root} or grow its filesystem`;
  if (used >= DATASTORE_FAILED_USED_PERCENT) return fail(name, detail, fix);
  if (used >= DATASTORE_WARNING_USED_PERCENT) return warn(name, detail, fix);
  return ok(name, detail);
}

function clockCheck(skewMs: number, roundTripMs: number): DoctorCheck {
  const detail = `${skewText(Math.round(skewMs))} (± ${Math.ceil(roundTripMs / 2)} ms)`;
  const fix = 'run an NTP client (chrony, systemd-timesyncd) on both hosts';
  const skew = Math.abs(skewMs);
  if (skew > SKEW_FAILED_MS) return fail('clock', detail, fix);
  if (skew > SKEW_WARNING_MS) return warn('clock', detail, fix);
  return ok('clock', detail);
}

function monitoringCheck(h: HealthResponse, nowMs: number): DoctorCheck {
  if (h.monitoringMode !== 'push') return ok('monitoring', h.monitoringMode);
  const last =
    h.lastMonitordDeliveryMs > 0
      ? `last delivery to monitord ${humanAge(nowMs - h.lastMonitordDeliveryMs)}`
      : 'nothing delivered yet';
  return h.lastMonitordError === ''
    ? ok('monitoring', `push, ${last}`)
    : warn(
        'monitoring',
        `push, ${last}; last error: ${h.lastMonitordError}`,
        "check monitord's address and port in the agent's config (monitord) and that monitord listens there",
      );
}
