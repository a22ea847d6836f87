import { lstat, stat, writeFile } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type {
  CreateProbeRequest,
  CreateProbeResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { descriptorPath, openVerifiedDirectory } from '../transfer/verified-open.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requireField, requirePath } from './validate.js';

export const PROBE_PREFIX = '.probe-';
/** The caller's name for the probe: the prefix and 128 random bits, so two callers never pick the same. */
const PROBE_NAME = /^\.probe-[0-9a-f]{32}$/;

/**
 * Creates the empty file `name` in `dir` (the mktemp of OpenNebula's ssh/mv shared-storage check)
 * and returns its oned-view path; the coordinator deletes it after asking another agent whether it
 * sees the same file. The caller picks the name, so a repeat finds the probe it made instead of
 * leaving a second one behind.
 */
export async function createProbe(
  agent: AgentContext,
  req: CreateProbeRequest,
  call: CallContext,
): Promise<CreateProbeResponse> {
  const dir = requirePath(agent, 'create probe', 'dir', req.dir);
  const name = requireField(agent, 'create probe', 'name', req.name);
  if (!PROBE_NAME.test(name)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `create probe on ${agent.name}: name must be ${PROBE_PREFIX} and 32 lowercase hex digits (got ${JSON.stringify(name)})`,
    );
  }
  const localDir = await agent.roots.resolveTarget(dir, 'dir');
  const created = await writeProbe(localDir, name, where(agent, dir));
  const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
  call.log.debug({ path, created }, 'probe created');
  return { path, created };
}

/**
 * Creates the empty file `name` in `localDir` (the real path resolveTarget confined) through a
 * descriptor of the directory, opened without following a symlink and proved to be at `localDir`:
 * a directory, or an ancestor, swapped for a symlink after the path was confined is refused
 * (PATH_OUTSIDE_ROOTS), never followed out of the roots
 * (docs/security.md#the-data-path-and-symlinks). `here` names the
 * directory in errors. True when the file was made, false when an earlier call's probe is there.
 */
export async function writeProbe(localDir: string, name: string, here: string): Promise<boolean> {
  const isDirectory = await stat(localDir).then(
    (s) => s.isDirectory(),
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return false;
      throw asStorageError(err, 'create probe in', here);
    },
  );
  if (!isDirectory) throw new StorageError('NOT_FOUND', `create probe in ${here}: no such directory`);
  const dir = await openVerifiedDirectory(localDir, `create probe in ${here}`);
  try {
    const probe = `${descriptorPath(dir)}/${name}`;
    // 'wx': never truncate an existing file, never follow a symlink at the name. No lock: the name
    // is new and only its caller knows it.
    return await writeFile(probe, '', { flag: 'wx' }).then(
      () => true,
      async (err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST' && (await isEmptyFile(probe))) return false;
        if (err.code === 'EEXIST')
          throw new StorageError(
            'ALREADY_EXISTS',
            `create probe ${name} in ${here}: something else holds the name`,
          );
        throw asStorageError(err, 'create probe in', here);
      },
    );
  } finally {
    await dir.close();
  }
}

/** The probe an earlier call made: an empty regular file (never a symlink). */
async function isEmptyFile(path: string): Promise<boolean> {
  return lstat(path).then(
    (s) => s.isFile() && s.size === 0,
    () => false,
  );
}
