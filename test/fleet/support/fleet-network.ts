import { run } from './command.js';

/** The fleet's private network; nothing outside the namespaces created here uses it. */
export const FLEET_PREFIX = '198.51.100';
export const FLEET_PREFIX_LENGTH = 24;

export interface FleetNode {
  /** Short name used in namespace and interface names ("fe", "h1", "ctl"). */
  tag: string;
  /** Last octet of its address in 198.51.100.0/24. */
  octet: number;
}

/**
 * One network namespace per node (containers join theirs with --network-namespace-path), all
 * linked to a bridge that lives in a namespace of its own, so nothing is added to the machine's
 * own network namespace. Each node sees one interface, eth0, with 198.51.100.<octet>/24.
 */
export class FleetNetwork {
  private readonly made: string[] = [];

  constructor(
    /** Prefix of every namespace name, unique per run ("osf-1a2b"). */
    readonly prefix: string,
  ) {}

  get bridgeNamespace(): string {
    return `${this.prefix}-br`;
  }

  namespaceOf(tag: string): string {
    return `${this.prefix}-${tag}`;
  }

  static address(node: FleetNode): string {
    return `${FLEET_PREFIX}.${node.octet}`;
  }

  async create(nodes: readonly FleetNode[]): Promise<void> {
    const br = this.bridgeNamespace;
    await this.addNamespace(br);
    await ip(['-n', br, 'link', 'add', 'br0', 'type', 'bridge'], `create the bridge in ${br}`);
    await ip(['-n', br, 'link', 'set', 'br0', 'up'], `bring up the bridge in ${br}`);
    for (const node of nodes) {
      const ns = this.namespaceOf(node.tag);
      await this.addNamespace(ns);
      // Both ends are created directly in their namespaces: the machine's own never sees them.
      const port = `p-${node.tag}`;
      await ip(
        ['-n', br, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns],
        `create the veth pair ${port}/eth0 between ${br} and ${ns}`,
      );
      await ip(['-n', br, 'link', 'set', port, 'master', 'br0', 'up'], `attach ${port} to the bridge`);
      await ip(
        ['-n', ns, 'addr', 'add', `${FleetNetwork.address(node)}/${FLEET_PREFIX_LENGTH}`, 'dev', 'eth0'],
        `address eth0 in ${ns}`,
      );
      await ip(['-n', ns, 'link', 'set', 'eth0', 'up'], `bring up eth0 in ${ns}`);
    }
  }

  /**
   * A firewall on a node: its namespace refuses (TCP reset) or again accepts connections to `port`
   * from the address `from`, as a host's firewall blocking the front-end would.
   */
  async refuseTcp(tag: string, port: number, from: string, refuse: boolean): Promise<void> {
    const ns = this.namespaceOf(tag);
    const rule = [
      'INPUT',
      '-s',
      from,
      '-p',
      'tcp',
      '--dport',
      String(port),
      '-j',
      'REJECT',
      '--reject-with',
      'tcp-reset',
    ];
    await run('ip', ['netns', 'exec', ns, 'iptables', refuse ? '-I' : '-D', ...rule], {
      what: `${refuse ? 'block' : 'unblock'} TCP port ${port} in ${ns}`,
    });
  }

  /** Removes every namespace made here (their veths and the bridge go with them). */
  async destroy(): Promise<string[]> {
    const problems: string[] = [];
    for (const ns of this.made.splice(0).reverse()) {
      await ip(['netns', 'delete', ns], `delete the network namespace ${ns}`).catch((err: Error) =>
        problems.push(err.message),
      );
    }
    return problems;
  }

  /** The namespaces still to remove (for a synchronous last-chance cleanup). */
  namespaces(): readonly string[] {
    return this.made;
  }

  private async addNamespace(ns: string): Promise<void> {
    await ip(['netns', 'add', ns], `create the network namespace ${ns}`);
    this.made.push(ns);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up'], `bring up loopback in ${ns}`);
  }
}

function ip(args: string[], what: string): Promise<unknown> {
  return run('ip', args, { what });
}
