// `one-storage status`: on the front-end, with the coordinator's config and certificate (only the
// coordinator may call an agent), ask each agent's Hello over mutual TLS through the coordinator's
// own agent client, and say per agent whether it answered. The rolling upgrade runs it after
// each node (deploy/ansible/upgrade.yml).
import { randomUUID } from 'node:crypto';
import { StorageError } from '../../../common/src/errors.js';
import { loadTls } from '../../../common/src/tls.js';
import { AgentRegistry } from '../../../coordinator/src/agents/agent-registry.js';
import type { CoordinatorConfig } from '../../../coordinator/src/config.js';

export interface AgentStatus {
  name: string;
  ok: boolean;
  /** `NAME ok version X` or `NAME FAILED why`. */
  line: string;
}

/**
 * Calls Hello on `names` (every configured agent when empty), all at once, each within
 * `deadlineMs`. Unknown names and unreadable TLS files are CONFIG_INVALID (a usage problem, not
 * an agent's).
 */
export async function agentStatuses(
  config: Readonly<CoordinatorConfig>,
  names: readonly string[],
  deadlineMs: number,
): Promise<AgentStatus[]> {
  const wanted = names.length > 0 ? [...new Set(names)] : [...config.agents.keys()];
  const unknown = wanted.filter((n) => !config.agents.has(n));
  if (unknown.length > 0) {
    throw new StorageError(
      'CONFIG_INVALID',
      `status: no agent named ${unknown.join(', ')} in ${config.source} (agents: ${[...config.agents.keys()].join(', ')})`,
    );
  }
  const registry = new AgentRegistry(config.agents, loadTls(config.tls, config.source), config.frontend);
  const requestId = `status-${randomUUID()}`;
  try {
    return await Promise.all(
      wanted.map(async (name): Promise<AgentStatus> => {
        try {
          const hello = await registry.get(name).call('hello', {}, { deadlineMs, requestId });
          if (hello.name !== name) {
            return { name, ok: false, line: `${name} FAILED answered as "${hello.name}"` };
          }
          return { name, ok: true, line: `${name} ok version ${hello.version}` };
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          return { name, ok: false, line: `${name} FAILED ${why}` };
        }
      }),
    );
  } finally {
    registry.close();
  }
}
