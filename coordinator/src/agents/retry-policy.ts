import { AgentServiceDefinition } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { AgentMethod } from './agent-client.js';

type Methods = typeof AgentServiceDefinition.methods;

/** What agent.proto declares for one RPC: `option idempotency_level`, or none. */
export function idempotencyLevel(method: AgentMethod): 'IDEMPOTENT' | 'NO_SIDE_EFFECTS' | undefined {
  const options: Methods[AgentMethod]['options'] = AgentServiceDefinition.methods[method].options;
  return 'idempotencyLevel' in options ? options.idempotencyLevel : undefined;
}

/**
 * Whether the coordinator may repeat an agent RPC blindly (after a deadline, an unreachable agent or
 * a busy path): the contract marks it IDEMPOTENT or NO_SIDE_EFFECTS. Receive (a single-use ticket)
 * and CopyDiskLive (a repeat after a success is ALREADY_EXISTS) carry no mark and are not repeated.
 */
export function isRetriable(method: AgentMethod): boolean {
  return idempotencyLevel(method) !== undefined;
}
