import { identityOfCertificate, type RoleFinding } from '../../../common/src/certificate-role.js';
import { certificateFacts } from '../../../common/src/certificate-expiry.js';
import type { TlsMaterial } from '../../../common/src/tls.js';
import type { AgentConfig, RootConfig } from '../config.js';
import type { MonitordDeliveries } from '../monitor/monitord-deliveries.js';

/** Health's words for how the agent monitors (agent.proto HealthResponse.monitoring_mode). */
export type MonitoringMode = 'push' | 'probe' | 'off';

/** What Health reads, gathered once at start-up by startAgent (agent/src/server.ts). */
export interface HealthSources {
  /** The agent's own certificate, as loaded. */
  readonly certificate: { readonly notAfterMs: number; readonly subject: string; readonly role: RoleFinding };
  readonly roots: readonly RootConfig[];
  readonly libvirt: AgentConfig['libvirt'];
  readonly monitoringMode: MonitoringMode;
  /** The last push to monitord (push mode); never touched in the other modes. */
  readonly deliveries: MonitordDeliveries;
  /** host:port other agents dial for the data path. */
  readonly dataAddress: () => string;
}

export function healthSources(
  config: Pick<AgentConfig, 'roots' | 'libvirt' | 'monitor'>,
  tls: TlsMaterial,
  deliveries: MonitordDeliveries,
  dataAddress: () => string,
): HealthSources {
  return {
    certificate: { ...certificateFacts(tls.cert), role: identityOfCertificate(tls.cert).role },
    roots: config.roots,
    libvirt: config.libvirt,
    monitoringMode: !config.monitor ? 'off' : config.monitor.report === 'push' ? 'push' : 'probe',
    deliveries,
    dataAddress,
  };
}
