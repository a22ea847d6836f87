import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { distEntry, startDaemon, waitUntil } from '../processes.js';

/**
 * Starts a relay (relay.ts) inside the network namespace `ns`, its output appended to `log`, and
 * resolves once it listens (it says "ready"); fails with the log's tail when it exits first.
 */
export async function startRelay(
  ns: string,
  listen: string,
  target: string,
  log: string,
): Promise<ChildProcess> {
  const child = startDaemon(distEntry('cli/src/demo/netns/relay.js'), [listen, target], log, undefined, ns);
  try {
    await waitUntil(
      `relay ${listen} -> ${target} in ${ns}`,
      async () => (await readFile(log, 'utf8')).includes('ready'),
      child,
      log,
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return child;
}
