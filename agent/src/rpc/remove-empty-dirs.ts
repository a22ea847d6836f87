import { asStorageError } from '../../../common/src/errors.js';
import type {
  RemoveEmptyDirsRequest,
  RemoveEmptyDirsResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requirePath } from './validate.js';
import { removeIfEmpty } from '../files/remove-if-empty.js';

const METHOD = 'remove empty dirs';

/**
 * Takes away directories a MakeDir made for a step that then failed: deepest first, each only
 * while empty (files/remove-if-empty.ts), never a datastore root. Every path is checked before the
 * first is removed; an absent one is skipped, so a repeat succeeds.
 */
export async function removeEmptyDirs(
  agent: AgentContext,
  req: RemoveEmptyDirsRequest,
  call: CallContext,
): Promise<RemoveEmptyDirsResponse> {
  const targets: Array<{ path: string; local: string }> = [];
  for (const raw of req.paths) {
    const path = requirePath(agent, METHOD, 'paths', raw);
    const local = await agent.roots.resolve(path, 'paths');
    // A root is configuration, never something an action made.
    if (await agent.roots.isRoot(local)) continue;
    if (!targets.some((t) => t.local === local)) targets.push({ path, local });
  }
  const first = targets[0];
  if (first === undefined) return { removed: [] };
  // Deepest first: a parent can only go once its children have.
  targets.sort((a, b) => depth(b.local) - depth(a.local) || b.local.localeCompare(a.local));
  return agent.locks.withLock(
    targets.map((t) => t.local),
    `${METHOD} ${where(agent, first.path)}`,
    async () => {
      const removed: string[] = [];
      for (const t of targets) {
        const outcome = await removeIfEmpty(t.local).catch((err: unknown) => {
          throw asStorageError(err, METHOD, where(agent, t.path));
        });
        if (outcome === 'removed') removed.push(t.path);
      }
      if (removed.length > 0) call.log.info({ removed }, 'empty directories removed');
      return { removed };
    },
    call.signal,
  );
}

function depth(path: string): number {
  return path.split('/').length;
}
