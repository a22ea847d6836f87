import type { HelloRequest, HelloResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { AgentContext } from './context.js';

/** Reports who this agent is and what it serves. Read-only, so trivially repeatable. */
export function hello(agent: AgentContext, _req: HelloRequest): Promise<HelloResponse> {
  return Promise.resolve({
    name: agent.name,
    version: agent.version,
    locations: [...agent.roots.locations],
    dataAddress: agent.dataPath.dataAddress(),
  });
}
