import type { AgentMethod } from '../agents/agent-client.js';

/**
 * What kind of data path an agent RPC's reported bytes went through (the `path_kind` label of
 * one_storage_bytes_moved_total; docs/metrics.md): the RPCs whose responses carry `bytes`, as
 * AgentOps adds them into the journal's bytes of a driver call.
 */
const PATH_KINDS: Partial<Record<AgentMethod, string>> = {
  // Agent to agent over the data path (the receiving agent pulls).
  receive: 'transfer',
  // A copy inside one agent's roots.
  copy: 'local',
  // A backup's disks received by the backup datastore's agent.
  receiveBackup: 'backup',
  // A context ISO built on the host.
  buildIso: 'context',
};

/** The path kind of `method`'s bytes; `other` for an RPC not listed (a new one still counts). */
export function bytesPathKind(method: AgentMethod): string {
  return PATH_KINDS[method] ?? 'other';
}
