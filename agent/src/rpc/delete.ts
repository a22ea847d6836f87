import { lstat, rm } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type { DeleteRequest, DeleteResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requireField } from './validate.js';

/**
 * OpenNebula's delete retries `rm -rf` up to 10 times: a qemu process that is still closing, or an
 * NFS client's silly-rename, makes rm fail with EBUSY/ENOTEMPTY for a moment. fs.rm retries those
 * (and EMFILE/ENFILE/EPERM) itself, waiting RETRY_DELAY_MS × attempt between tries.
 */
export const DELETE_MAX_RETRIES = 10;
export const DELETE_RETRY_DELAY_MS = 100;

/** rm -rf of a file, a symlink (never its target) or a tree. Absent is success with existed=false. */
export async function deletePath(
  agent: AgentContext,
  req: DeleteRequest,
  call: CallContext,
): Promise<DeleteResponse> {
  const path = requireField(agent, 'delete', 'path', req.path);
  const local = await agent.roots.resolve(path, 'path');
  const here = where(agent, path);
  if (await agent.roots.isRoot(local)) {
    throw new StorageError('UNSAFE_PATH', `delete ${here}: refusing to delete a datastore root`);
  }
  return agent.locks.withLock(
    [local],
    `delete ${here}`,
    async () => {
      const existed = await lstat(local).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          // A file where a directory was expected (ENOTDIR) means the path is not there either.
          if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return false;
          throw asStorageError(err, 'delete', here);
        },
      );
      if (!existed) return { existed: false };
      await rm(local, {
        recursive: true,
        force: true,
        maxRetries: DELETE_MAX_RETRIES,
        retryDelay: DELETE_RETRY_DELAY_MS,
      }).catch((err: unknown) => {
        throw asStorageError(err, 'delete', here);
      });
      call.log.info({ path }, 'deleted');
      return { existed: true };
    },
    call.signal,
  );
}
