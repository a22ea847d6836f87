import { lstat } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type { MakeDirRequest, MakeDirResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requireField } from './validate.js';
import { makeDirectory } from '../files/make-directory.js';

/** mkdir -p. An existing directory is success with created=false; a file in the way is ALREADY_EXISTS. */
export async function makeDir(
  agent: AgentContext,
  req: MakeDirRequest,
  call: CallContext,
): Promise<MakeDirResponse> {
  const path = requireField(agent, 'mkdir', 'path', req.path);
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
      if (kind === 'directory') return { created: false };
      if (kind === 'other')
        throw new StorageError('ALREADY_EXISTS', `mkdir ${here}: exists and is not a directory`);
      // mkdir is atomic on its own: nothing half-made to clean up.
      await makeDirectory(local).catch((err: unknown) => {
        throw asStorageError(err, 'mkdir', here);
      });
      call.log.info({ path }, 'directory created');
      return { created: true };
    },
    call.signal,
  );
}
