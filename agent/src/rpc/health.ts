import type { HealthRequest, HealthResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { AgentContext } from './context.js';

/** The agent's health (see Health in agent.proto). */
export function health(agent: AgentContext, _req: HealthRequest): Promise<HealthResponse> {
  return Promise.resolve({
    name: agent.name,
    version: agent.version,
    nowMs: Date.now(),
    certificateNotAfterMs: 0,
    certificateSubject: '',
    datastores: [],
    libvirtOk: false,
    libvirtDetail: 'not checked',
    monitoringMode: '',
    lastMonitordDeliveryMs: 0,
    lastMonitordError: '',
    checks: [],
  });
}
