/**
 * Which symlinks a sent tree may hold (docs/security.md, "Symlinks on the data path"). OpenNebula's
 * `.snap` layout needs relative links that stay inside the tree (`disk.0.snap/disk.0.snap -> .`,
 * `disk.0 -> disk.0.snap/1`); an absolute link, or one whose target leaves the tree, would make the
 * copy point at whatever the destination host has there (another VM's disk), so both are refused.
 * The sender checks before it issues a ticket and the receiver checks again before it creates
 * anything: neither trusts the other to have done it.
 */

/** What the check needs of a manifest entry. */
export interface TreeEntry {
  path: string;
  kind: string;
  link?: string | undefined;
}

/** Linux's own limit on links followed in one lookup (MAXSYMLINKS): past it, a chain is a loop. */
const MAX_LINK_HOPS = 40;

class LeavesTree extends Error {}

/**
 * The first symlink of `entries` (tree-relative, "/"-separated paths, root "") that is absolute or
 * leads out of the tree, described in a few words; undefined when every link stays inside.
 * Targets are resolved the way the kernel would on a copy of this tree: component by component,
 * following the tree's own links, so `a/up/../..` through `a/up -> ..` is seen to leave. A component
 * the tree does not hold is taken literally (the kernel would stop there; the check stays strict).
 */
export function treeLinkProblem(entries: readonly TreeEntry[]): string | undefined {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  for (const e of entries) {
    if (e.kind !== 'symlink') continue;
    const shown = e.path === '' ? '.' : e.path;
    const target = e.link ?? '';
    if (target.startsWith('/')) return `symlink "${shown}" -> "${target}" is absolute`;
    const parent = e.path.split('/').slice(0, -1);
    try {
      resolveInside(byPath, parent, target, { hops: 0 });
    } catch (err) {
      if (!(err instanceof LeavesTree)) throw err;
      return `symlink "${shown}" -> "${target}" ${err.message}`;
    }
  }
  return undefined;
}

function resolveInside(
  byPath: ReadonlyMap<string, TreeEntry>,
  from: readonly string[],
  target: string,
  budget: { hops: number },
): string[] {
  let at = [...from];
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (at.length === 0) throw new LeavesTree('leads out of the tree');
      at.pop();
      continue;
    }
    const entry = byPath.get([...at, part].join('/'));
    if (entry?.kind !== 'symlink') {
      at.push(part);
      continue;
    }
    if (++budget.hops > MAX_LINK_HOPS) throw new LeavesTree('loops');
    const next = entry.link ?? '';
    if (next.startsWith('/')) throw new LeavesTree(`leads out of the tree through "${entry.path}"`);
    at = resolveInside(byPath, at, next, budget);
  }
  return at;
}
