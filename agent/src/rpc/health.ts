import { StorageError } from '../../../common/src/errors.js';
import type { HealthRequest, HealthResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { agentHealth } from '../health/agent-health.js';
import type { AgentContext, CallContext } from './context.js';

/** The agent's health (see Health in agent.proto; the work is in agent/src/health/). */
export async function health(
  agent: AgentContext,
  req: HealthRequest,
  call: CallContext,
): Promise<HealthResponse> {
  const sources = agent.health;
  if (!sources)
    throw new StorageError(
      'INTERNAL',
      `agent ${agent.name}: Health has no sources (not started by startAgent)`,
    );
  return agentHealth({ name: agent.name, version: agent.version, health: sources }, req.deep, call.signal);
}
