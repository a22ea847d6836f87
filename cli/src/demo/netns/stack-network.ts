import { runTool } from '../../../../common/src/tools/run-tool.js';

/** The test network; nothing outside the namespaces made here uses it (never 192.0.2.0/24). */
export const STACK_NET_PREFIX = '198.51.100';
const PREFIX_LENGTH = 24;
const IP_TIMEOUT_MS = 10_000;

/**
 * One network namespace per host, each with one interface, eth0, holding 198.51.100.<n>/24, all
 * linked to a bridge in a namespace of its own: nothing is added to the machine's own network
 * namespace. Built the way test/fleet/support/fleet-network.ts builds the fleet's. Cutting a host's
 * link (`ip link set eth0 down` in its namespace) drops its packets silently, as a pulled cable
 * does: no reset reaches either end. Its own address stays reachable from inside its namespace.
 */
export class StackNetwork {
  private readonly made: string[] = [];
  private readonly octets = new Map<string, number>();

  constructor(
    /** Prefix of every namespace name, unique per stack ("os-1a2b"). */
    readonly prefix: string,
    /** Host i gets 198.51.100.<i+1>. */
    readonly hosts: readonly string[],
  ) {
    hosts.forEach((h, i) => this.octets.set(h, i + 1));
  }

  namespaceOf(host: string): string {
    return `${this.prefix}-${this.tag(host)}`;
  }

  /** The host's address on the test network. */
  addressOf(host: string): string {
    return `${STACK_NET_PREFIX}.${this.octet(host)}`;
  }

  /** Makes the bridge and one namespace per host. */
  async create(): Promise<void> {
    const br = `${this.prefix}-br`;
    await this.addNamespace(br);
    await ip(['-n', br, 'link', 'add', 'br0', 'type', 'bridge'], `create the bridge in ${br}`);
    await ip(['-n', br, 'link', 'set', 'br0', 'up'], `bring up the bridge in ${br}`);
    for (const host of this.hosts) {
      const ns = this.namespaceOf(host);
      await this.addNamespace(ns);
      const port = `p-${this.tag(host)}`;
      // Both ends are made directly in their namespaces: the machine's own never sees them.
      await ip(
        ['-n', br, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns],
        `create the veth pair ${port}/eth0 between ${br} and ${ns}`,
      );
      await ip(['-n', br, 'link', 'set', port, 'master', 'br0', 'up'], `attach ${port} to the bridge`);
      await ip(
        ['-n', ns, 'addr', 'add', `${this.addressOf(host)}/${PREFIX_LENGTH}`, 'dev', 'eth0'],
        `address eth0 in ${ns}`,
      );
      await this.setLink(host, true);
    }
  }

  /** Cuts (false) or restores (true) the host's link to the others. */
  async setLink(host: string, up: boolean): Promise<void> {
    const ns = this.namespaceOf(host);
    await ip(
      ['-n', ns, 'link', 'set', 'eth0', up ? 'up' : 'down'],
      `set eth0 ${up ? 'up' : 'down'} in ${ns}`,
    );
  }

  /** Removes every namespace made here (veths and the bridge go with them); returns what failed. */
  async destroy(): Promise<string[]> {
    const problems: string[] = [];
    for (const ns of this.made.splice(0).reverse()) {
      await ip(['netns', 'delete', ns], `delete the network namespace ${ns}`).catch((err: Error) =>
        problems.push(err.message),
      );
    }
    return problems;
  }

  private octet(host: string): number {
    const n = this.octets.get(host);
    if (n === undefined) throw new Error(`no host ${host} on the stack's network`);
    return n;
  }

  /** Short tag for interface names (at most 15 characters): h1, h2, ... */
  private tag(host: string): string {
    return `h${this.octet(host)}`;
  }

  private async addNamespace(ns: string): Promise<void> {
    await ip(['netns', 'add', ns], `create the network namespace ${ns}`);
    this.made.push(ns);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up'], `bring up loopback in ${ns}`);
  }
}

async function ip(args: string[], what: string): Promise<void> {
  await runTool('ip', args, { what, timeoutMs: IP_TIMEOUT_MS });
}
