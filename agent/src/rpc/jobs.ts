import type {
  CancelJobsRequest,
  CancelJobsResponse,
  ListJobsRequest,
  ListJobsResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { AgentContext } from './context.js';

/**
 * The calls running on this agent, with their progress. ListJobs itself is running while it
 * answers, so it leaves itself out.
 */
export function listJobs(agent: AgentContext, req: ListJobsRequest): Promise<ListJobsResponse> {
  return Promise.resolve({
    jobs: agent.jobs.list(req.requestId).filter((j) => j.method !== 'ListJobs'),
    nowMs: Date.now(),
  });
}

/** Aborts the calls of one request id (see CancelJobs in agent.proto). */
export function cancelJobs(agent: AgentContext, req: CancelJobsRequest): Promise<CancelJobsResponse> {
  return Promise.resolve({ cancelled: agent.jobs.cancel(req.requestId, 'cancelled by request') });
}
