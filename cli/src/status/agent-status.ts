// `one-storage status`, per agent: on the front-end, with the coordinator's config and certificate
// (only the coordinator may call an agent), ask each agent's Health over mutual TLS through the
// coordinator's own agent client. The rolling upgrade runs it after each node
// (deploy/ansible/upgrade.yml); an agent from before Health still answers Hello.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { StorageError } from '../../../common/src/errors.js';
import type { TlsMaterial } from '../../../common/src/tls.js';
import { AgentRegistry } from '../../../coordinator/src/agents/agent-registry.js';
import type { CoordinatorConfig } from '../../../coordinator/src/config.js';
import { reportFromHealth, type AgentReport } from './agent-report.js';
import { diagnoseTls } from './tls-probe.js';

/**
 * The reports of `names` (every configured agent when empty), all at once, each call within
 * `deadlineMs`. Unknown names are CONFIG_INVALID (a usage problem, not an agent's).
 */
export async function agentStatuses(
  config: Readonly<CoordinatorConfig>,
  tls: TlsMaterial,
  names: readonly string[],
  deadlineMs: number,
): Promise<AgentReport[]> {
  const wanted = names.length > 0 ? [...new Set(names)] : [...config.agents.keys()];
  const unknown = wanted.filter((n) => !config.agents.has(n));
  if (unknown.length > 0) {
    throw new StorageError(
      'CONFIG_INVALID',
      `status: no agent named ${unknown.join(', ')} in ${config.source} (agents: ${[...config.agents.keys()].join(', ')})`,
    );
  }
  const registry = new AgentRegistry(config.agents, tls, config.frontend);
  const requestId = `status-${randomUUID()}`;
  try {
    return await Promise.all(
      wanted.map((name) => agentStatus(registry, tls, name, { deadlineMs, requestId })),
    );
  } finally {
    registry.close();
  }
}

async function agentStatus(
  registry: AgentRegistry,
  tls: TlsMaterial,
  name: string,
  opts: { deadlineMs: number; requestId: string },
): Promise<AgentReport> {
  const client = registry.get(name);
  const sentMs = Date.now();
  try {
    const health = await client.call('health', { deep: false }, opts);
    return reportFromHealth(name, health, sentMs, Date.now());
  } catch (err) {
    if (grpcCode(err) === grpc.status.UNIMPLEMENTED) {
      // An agent from before Health (a rolling upgrade half-way): it answers, its version says which.
      const hello = await client.call('hello', {}, opts).catch((e: unknown) => e as Error);
      if (!(hello instanceof Error)) {
        return {
          name,
          state: 'warning',
          reachable: true,
          findings: [{ level: 'warning', text: 'agent too old for Health: only its version is known' }],
          facts: [`version ${hello.version}`],
          version: hello.version,
        };
      }
    }
    const why =
      err instanceof StorageError && err.reason === 'AGENT_UNAVAILABLE'
        ? `unreachable: ${(await diagnoseTls(client.agent, tls, opts.deadlineMs)).why}`
        : err instanceof Error
          ? err.message
          : String(err);
    return { name, state: 'failed', reachable: false, findings: [{ level: 'failed', text: why }], facts: [] };
  }
}

/** The gRPC status code behind an AgentClient error, when there is one. */
function grpcCode(err: unknown): number | undefined {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'number' ? cause.code : undefined;
}
