import { lstat } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type { MakeDirRequest, MakeDirResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requirePath } from './validate.js';
import { makeDirectory } from '../files/make-directory.js';

/**
 * mkdir -p. An existing directory is success with created=false; a file in the way is ALREADY_EXISTS.
 * `made` names what was created, so that the coordinator can take exactly that away again when the
 * step that needed it fails (RemoveEmptyDirs).
 */
export async function makeDir(
  agent: AgentContext,
  req: MakeDirRequest,
  call: CallContext,
): Promise<MakeDirResponse> {
  const path = requirePath(agent, 'mkdir', 'path', req.path);
  const local = await agent.roots.resolve(path, 'path');
  const here = where(agent, path);
  return agent.locks.withLock(
    [local],
    `mkdir ${here}`,
    async () => {
      const kind = await lstat(local).then(
        (s) => (s.isDirectory() ? 'directory' : 'other'),
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return 'absent';
          throw asStorageError(err, 'mkdir', here);
        },
      );
      if (kind === 'directory') return { created: false, made: [] };
      if (kind === 'other')
        throw new StorageError('ALREADY_EXISTS', `mkdir ${here}: exists and is not a directory`);
      // mkdir is atomic on its own: nothing half-made to clean up.
      const created = await makeDirectory(local).catch((err: unknown) => {
        throw asStorageError(err, 'mkdir', here);
      });
      const made = onedAncestors(path, created.length);
      call.log.info({ path, made }, 'directory created');
      return { created: true, made };
    },
    call.signal,
  );
}

/**
 * The last `count` directories of `path` (oned's view), outermost first: what makeDirectory created
 * are always the missing tail of the path, whose names are the same in both views.
 */
function onedAncestors(path: string, count: number): string[] {
  const out: string[] = [];
  let current = path;
  for (let i = 0; i < count; i++) {
    out.unshift(current);
    current = current.slice(0, current.lastIndexOf('/')) || '/';
  }
  return out;
}
