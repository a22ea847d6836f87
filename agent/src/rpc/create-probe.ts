import { randomBytes } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type {
  CreateProbeRequest,
  CreateProbeResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requirePath } from './validate.js';

export const PROBE_PREFIX = '.probe-';
/** 128 random bits: two agents (or two calls) never pick the same name. */
const PROBE_NAME_BYTES = 16;

/**
 * Creates an empty, uniquely named file in `dir` (the mktemp of OpenNebula's ssh/mv shared-storage
 * check) and returns its oned-view path. Each call creates a new probe by design; the coordinator
 * deletes it after asking another agent whether it sees the same file.
 */
export async function createProbe(
  agent: AgentContext,
  req: CreateProbeRequest,
  call: CallContext,
): Promise<CreateProbeResponse> {
  const dir = requirePath(agent, 'create probe', 'dir', req.dir);
  const localDir = await agent.roots.resolveTarget(dir, 'dir');
  const here = where(agent, dir);
  const isDirectory = await stat(localDir).then(
    (s) => s.isDirectory(),
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return false;
      throw asStorageError(err, 'create probe in', here);
    },
  );
  if (!isDirectory) throw new StorageError('NOT_FOUND', `create probe in ${here}: no such directory`);
  const name = `${PROBE_PREFIX}${randomBytes(PROBE_NAME_BYTES).toString('hex')}`;
  // 'wx': never reuse or truncate an existing file. No lock: the name is new and nobody else knows it.
  await writeFile(`${localDir}/${name}`, '', { flag: 'wx' }).catch((err: unknown) => {
    throw asStorageError(err, 'create probe in', here);
  });
  const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
  call.log.debug({ path }, 'probe created');
  return { path };
}
