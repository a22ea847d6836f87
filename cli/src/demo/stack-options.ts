import type { RunAs } from './processes.js';

/** How Stack.start builds a stack (cli/src/demo/stack.ts). */
export interface StackOptions {
  /** Hostnames to run agents for; the first is the front-end. */
  hosts?: readonly string[];
  /** Directory to build the stack in (default: a new temporary directory, removed by stop()). */
  baseDir?: string;
  /** Override a host's datastore directory (e.g. a small tmpfs for a full-disk test). */
  hostDirs?: Readonly<Record<string, string>>;
  /** Coordinator deadlines (tests shorten them). */
  deadlines?: { controlMs?: number; transferMs?: number };
  /** Every agent's data.encryption (default: the agent's own default, tls). */
  dataEncryption?: 'tls' | 'none';
  /** Every agent's data.rateLimitBytesPerSecond (default unlimited): makes transfers last. */
  dataRateLimit?: number;
  /** Every agent's data.idleTimeoutSeconds (default the agent's, 120 s): fault tests shorten it. */
  dataIdleTimeoutSeconds?: number;
  /** Extra top-level settings for a host's agent config (e.g. monitord and monitor). */
  agentSettings?: (name: string) => Readonly<Record<string, unknown>>;
  /** Extra top-level coordinator settings (e.g. monitord). */
  coordinatorSettings?: Readonly<Record<string, unknown>>;
  /** OpenNebula host ids the coordinator tells the agents (agents.<name>.hostId). */
  hostIds?: Readonly<Record<string, number>>;
  /**
   * Start a host's agent as this user instead of as ours (undefined: as ours). Its key is handed to
   * that user; its datastore directory must already be writable by it (see hostDirs).
   */
  agentRunAs?: (name: string) => RunAs | undefined;
  /**
   * Run each agent in a network namespace of its own on 198.51.100.0/24, the coordinator in the
   * front-end's, names starting with this prefix (root only; see netns/stack-network.ts). Their
   * certificates carry those addresses; Stack.setLink cuts and restores a host's link. The shims reach the
   * coordinator over its UNIX socket, the coordinator the fake oned, and this process each agent,
   * through UNIX-socket relays (netns/relay.ts).
   */
  network?: { prefix: string };
  /**
   * Extra environment for a host's agent (undefined: ours as it is), e.g. libfaketime's LD_PRELOAD
   * and FAKETIME_TIMESTAMP_FILE to move one host's clock.
   */
  agentEnv?: (name: string) => Readonly<Record<string, string>> | undefined;
}
