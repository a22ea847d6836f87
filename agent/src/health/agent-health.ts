import type { HealthResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { deepChecks } from './deep-checks.js';
import type { HealthSources } from './health-sources.js';
import { libvirtHealth } from './libvirt-health.js';
import { rootHealth } from './root-health.js';

/**
 * The agent's health (agent.proto Health): its certificate, each datastore root, libvirt, its
 * monitoring and the last delivery to monitord; with `deep`, the checks of deep-checks.ts.
 * Read-only: nothing is created, not even a missing root.
 */
export async function agentHealth(
  agent: { name: string; version: string; health: HealthSources },
  deep: boolean,
  signal: AbortSignal,
): Promise<HealthResponse> {
  const sources = agent.health;
  const [roots, libvirt] = await Promise.all([
    Promise.all(sources.roots.map(rootHealth)),
    libvirtHealth(sources.libvirt, signal),
  ]);
  const nowMs = Date.now();
  const checks = deep ? await deepChecks(sources, roots, agent.name, nowMs, signal) : [];
  return {
    name: agent.name,
    version: agent.version,
    // Taken after the work: the caller pairs it with the moment the answer arrives.
    nowMs: Date.now(),
    certificateNotAfterMs: sources.certificate.notAfterMs,
    certificateSubject: sources.certificate.subject,
    datastores: roots.map(({ ownerUid: _owner, ...d }) => d),
    libvirtOk: libvirt.ok,
    libvirtDetail: libvirt.detail,
    libvirtDisabled: libvirt.disabled,
    monitoringMode: sources.monitoringMode,
    lastMonitordDeliveryMs: sources.deliveries.lastDeliveryMs,
    lastMonitordError: sources.deliveries.lastError,
    checks,
  };
}
