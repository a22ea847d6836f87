// Runs ansible's tools for the test/ansible tests; a missing tool fails the test, naming the
// package that provides it (scripts/install-deps.sh installs them).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';

export const PLAYBOOKS = ['site.yml', 'upgrade.yml', 'uninstall.yml'] as const;

export function runTool(tool: string, args: string[], timeoutMs = 300_000): SpawnSyncReturns<string> {
  const r = spawnSync(tool, args, {
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, ANSIBLE_NOCOLOR: '1', NO_COLOR: '1', ANSIBLE_FORCE_COLOR: '0' },
  });
  if (r.error) {
    throw new Error(
      `${tool} could not be run (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}): install ansible-core and ansible-lint (scripts/install-deps.sh)`,
    );
  }
  return r;
}

/** The PLAY RECAP counters of one host, e.g. { ok: 40, changed: 0, failed: 0 }. */
export function recap(stdout: string, host: string): Record<string, number> {
  const line = stdout.split('\n').find((l) => l.startsWith(`${host} `) && l.includes('changed='));
  if (!line) throw new Error(`no PLAY RECAP line for ${host} in:\n${stdout.slice(-3000)}`);
  return Object.fromEntries([...line.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1] ?? '', Number(m[2])]));
}
