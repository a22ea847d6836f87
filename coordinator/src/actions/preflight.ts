import { StorageError } from '../../../common/src/errors.js';
import type { ActionContext } from './action-context.js';
import { formatHostPath, type HostPath } from './host-path.js';
import { kindOf, type FileKind } from './transfer.js';

// "Nothing happens before validation" (docs/security.md): an action stats every path argument on
// the host that will use it before its first change. Stat runs the agent's own path checks (`..`,
// unsafe characters, outside the datastore roots) and changes nothing, so a refused or pointless call
// fails before a VM directory, a `.monitor` marker or a staging directory exists.

/** Checks that `at` is a path its agent accepts; returns what is there (undefined: nothing). */
export function checkPath(ctx: ActionContext, at: HostPath): Promise<FileKind | undefined> {
  return kindOf(ctx, at);
}

/** Checks every path in turn (in argument order, so the first bad one is the one named). */
export async function checkPaths(ctx: ActionContext, paths: readonly HostPath[]): Promise<void> {
  for (const at of paths) await checkPath(ctx, at);
}

/**
 * A path that must already exist (an image to copy, a disk to save): NOT_FOUND names it. It is
 * followed to what it leads to, as the action will read it: a link planted in a datastore that
 * leads outside the roots (`<image> -> /etc/hostname`) is refused by its agent here.
 */
export async function requireExisting(ctx: ActionContext, at: HostPath, what: string): Promise<FileKind> {
  const st = await ctx.ops.call(at.host, 'stat', { path: at.path, follow: true });
  if (!st.exists) throw new StorageError('NOT_FOUND', `${what} ${formatHostPath(at)} does not exist`);
  return st.kind;
}
