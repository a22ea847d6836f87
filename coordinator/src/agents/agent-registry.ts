import { StorageError } from '../../../common/src/errors.js';
import type { TlsMaterial } from '../../../common/src/tls.js';
import type { Keepalive } from '../../../common/src/config/keepalive.js';
import type { AgentEndpoint } from '../config.js';
import { AgentClient } from './agent-client.js';

/** OpenNebula hostname → agent. Channels are opened on first use and kept. */
export class AgentRegistry {
  private readonly clients = new Map<string, AgentClient>();
  private readonly aliases: Map<string, string>;

  constructor(
    private readonly agents: ReadonlyMap<string, AgentEndpoint>,
    private readonly tls: TlsMaterial,
    readonly frontend: string,
    frontendAliases: readonly string[] = [],
    /** Keepalive pings on every agent's channel (coordinator config `keepalive`); absent: none. */
    private readonly keepalive?: Keepalive,
  ) {
    this.aliases = new Map(frontendAliases.map((a) => [a, frontend]));
  }

  /** The canonical agent name for a hostname as oned writes it (front-end aliases folded). */
  canonical(host: string): string {
    return this.aliases.get(host) ?? host;
  }

  get(host: string): AgentClient {
    const name = this.canonical(host);
    const known = this.clients.get(name);
    if (known) return known;
    const agent = this.agents.get(name);
    if (!agent) {
      throw new StorageError(
        'UNKNOWN_HOST',
        `unknown host "${host}": no agent is configured for it in the coordinator (agents: ${[...this.agents.keys()].join(', ')})`,
      );
    }
    const client = new AgentClient(agent, this.tls, this.keepalive);
    this.clients.set(name, client);
    return client;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
