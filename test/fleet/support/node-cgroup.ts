import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';
/**
 * The hierarchies systemd inside a node tracks its units in: name=systemd (cgroup v1, "systemd")
 * and, on a hybrid layout, the unified one. On a pure cgroup v2 machine the root is the unified one.
 */
const TRACKING = ['systemd', 'unified'] as const;
/** All fleet nodes' cgroups live under this group, one per node (its machine name). */
const FLEET_GROUP = 'one-storage-fleet';

/**
 * A cgroup of its own for one node, in each hierarchy systemd tracks units in. Without it,
 * systemd-nspawn --keep-unit (no systemd on this machine to make a scope) puts every node's
 * payload in the same cgroup as its starter's, so the nodes' systemd instances share
 * `payload/system.slice/<unit>` groups: one node's units fail with 219/CGROUP and stopping a unit
 * on one node could kill its namesake on another.
 */
export class NodeCgroup {
  private readonly dirs: string[];

  constructor(machine: string) {
    this.dirs = hierarchies().map((h) => join(h, FLEET_GROUP, machine));
  }

  /**
   * Runs `start` (which must fork the node's process synchronously, as child_process.spawn does)
   * with this process moved into the node's cgroups, so the child is born there; moves this
   * process back to where it was before returning, also when `start` throws.
   */
  spawnInside<T>(start: () => T): T {
    const back = hierarchies().map((h) => join(h, ownPath(h)));
    for (const d of this.dirs) mkdirSync(d, { recursive: true });
    try {
      for (const d of this.dirs) writeFileSync(join(d, 'cgroup.procs'), `${process.pid}\n`);
      return start();
    } finally {
      for (const d of back) writeFileSync(join(d, 'cgroup.procs'), `${process.pid}\n`);
    }
  }

  /** Removes the node's cgroups (depth first); those still holding processes are reported. */
  remove(): string[] {
    const problems: string[] = [];
    for (const d of this.dirs) {
      removeTree(d, problems);
      try {
        rmdirSync(dirname(d)); // the fleet group, once no node of any run is left in it
      } catch {
        // another node is still in it
      }
    }
    return problems;
  }
}

function hierarchies(): string[] {
  const named = TRACKING.map((h) => join(CGROUP_ROOT, h)).filter((d) => existsSync(join(d, 'cgroup.procs')));
  return named.length > 0 ? named : [CGROUP_ROOT];
}

/** This process's path in hierarchy `dir` (from /proc/self/cgroup). */
function ownPath(dir: string): string {
  const wanted = dir.endsWith('/systemd') ? 'name=systemd' : '';
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, controllers, path] = line.split(':', 3) as [string, string, string];
    if (controllers === wanted) return path;
  }
  throw new Error(`cannot find this process's cgroup for ${dir} in /proc/self/cgroup`);
}

function removeTree(dir: string, problems: string[]): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeTree(join(dir, entry.name), problems);
  }
  try {
    rmdirSync(dir);
  } catch (err) {
    problems.push(`cannot remove cgroup ${dir}: ${(err as Error).message}`);
  }
}
