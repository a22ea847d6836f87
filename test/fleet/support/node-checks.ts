import { readlink } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Container } from './container.js';
import { FLEET_NODES } from './fleet.js';

/** The installed layout: versions under /opt/one-storage, `current` the live one. */
export const CURRENT_LINK = '/opt/one-storage/current';
export const COORDINATOR_CONFIG = '/etc/one-storage/coordinator.yaml';

/** A unit's state as `systemctl status` shows it ("active (running)") and its main process's user. */
export async function agentProcess(node: Container, unit: string): Promise<{ state: string; user: string }> {
  const show = await node.exec(['systemctl', 'show', unit, '--property=ActiveState,SubState,MainPID']);
  const props = Object.fromEntries(
    show.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('=', 2) as [string, string]),
  );
  const state = `${props['ActiveState']} (${props['SubState']})`;
  const pid = props['MainPID'];
  if (!pid || pid === '0') return { state, user: '' };
  const ps = await node.exec(['ps', '-o', 'user=', '-p', pid], { allowFailure: true });
  return { state, user: ps.stdout.trim() };
}

/**
 * `one-storage status` on the front-end with the coordinator's certificate, for the agents named in
 * `extraArgs` (default every node's, so the coordinator's own line is left out): one line per
 * agent, sorted, each cut to `NAME STATE version V` (the rest, certificate dates and free space,
 * varies). Throws with its output when it exits non-zero (an agent did not answer, or FAILED).
 */
export async function statusLines(frontend: Container, extraArgs: readonly string[] = []): Promise<string[]> {
  const agents = extraArgs.includes('--agent') ? [] : FLEET_NODES.flatMap((n) => ['--agent', n.hostname]);
  const r = await frontend.exec(
    ['one-storage', 'status', '--config', COORDINATOR_CONFIG, ...agents, ...extraArgs],
    { what: 'one-storage status on the front-end', timeoutMs: 60_000 },
  );
  return r.stdout
    .trim()
    .split('\n')
    .map((line) => line.split(';', 1)[0] ?? line)
    .sort();
}

/** The version `current` points to on a node (the basename of its target). */
export async function installedVersion(node: Container): Promise<string> {
  return basename(await readlink(node.path(CURRENT_LINK)));
}
