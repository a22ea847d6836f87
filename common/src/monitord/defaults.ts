/**
 * monitord.conf's defaults (NETWORK/ADDRESS, NETWORK/PORT): the front-end's own monitord, on UDP.
 * Both daemons send to it unless their configuration says otherwise.
 */
export const MONITORD_DEFAULTS = { address: '127.0.0.1', port: 4124 } as const;

/**
 * Where the agent's monitoring endpoint listens, and where monitor_ds and the kvm-probes.d probes
 * reach it (docs/monitoring.md).
 */
export const AGENT_MONITOR_SOCKET = '/run/one-storage/agent-monitor.sock';
