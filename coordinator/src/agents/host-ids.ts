import { schedule, type ScheduledTask } from 'node-cron';
import type { Logger } from '../../../common/src/log.js';
import type { AgentRegistry } from './agent-registry.js';
import type { AgentEndpoint } from '../config.js';

/** Agents restart; telling them again every few minutes costs one tiny call each. */
export const HOST_ID_SCHEDULE = '*/5 * * * *';
const CALL_DEADLINE_MS = 5_000;

/**
 * Tells every agent with a configured `hostId` its OpenNebula host id (SetMonitorHost), which it
 * puts in the messages it pushes to monitord. Now, then on HOST_ID_SCHEDULE. An agent that is down
 * is retried at the next run; its own `monitor.hostId`, when set, wins.
 */
export function distributeHostIds(
  agents: AgentRegistry,
  endpoints: ReadonlyMap<string, AgentEndpoint>,
  logger: Logger,
): ScheduledTask | undefined {
  const withIds = [...endpoints.values()].filter((e) => e.hostId !== undefined);
  if (withIds.length === 0) return undefined;
  const run = async (): Promise<void> => {
    for (const e of withIds) {
      try {
        await agents
          .get(e.name)
          .call(
            'setMonitorHost',
            { hostId: e.hostId as number },
            { deadlineMs: CALL_DEADLINE_MS, requestId: 'host-ids' },
          );
      } catch (err) {
        logger.warn(
          { host: e.name, err: (err as Error).message },
          'monitoring: host id not delivered; retrying later',
        );
      }
    }
  };
  void run();
  return schedule(HOST_ID_SCHEDULE, run, { name: 'monitor-host-ids', noOverlap: true });
}
