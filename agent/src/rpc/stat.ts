import type { BigIntStats } from 'node:fs';
import { lstat, readlink, stat } from 'node:fs/promises';
import { asStorageError } from '../../../common/src/errors.js';
import {
  FileKind,
  type StatRequest,
  type StatResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { type AgentContext, where } from './context.js';
import { requireField } from './validate.js';

/** st_blocks counts 512-byte units whatever the filesystem's block size. */
const STAT_BLOCK_BYTES = 512n;

/**
 * lstat of a path: describes a symlink itself; with `follow`, stat of its confined real target
 * (resolveTarget refuses a link leading outside the roots). Absent is not an error (exists=false).
 * Read-only: no lock.
 */
export async function statPath(agent: AgentContext, req: StatRequest): Promise<StatResponse> {
  const path = requireField(agent, 'stat', 'path', req.path);
  const local = req.follow
    ? await agent.roots.resolveTarget(path, 'path')
    : await agent.roots.resolve(path, 'path');
  const here = where(agent, path);
  let s: BigIntStats;
  try {
    // bigint: sizes of multi-TB images and st_blocks products stay exact.
    s = req.follow ? await stat(local, { bigint: true }) : await lstat(local, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      return {
        exists: false,
        kind: FileKind.FILE_KIND_UNSPECIFIED,
        size: 0,
        allocated: 0,
        linkTarget: '',
        mtimeMs: 0,
      };
    }
    throw asStorageError(err, 'stat', here);
  }
  const linkTarget = s.isSymbolicLink()
    ? await readlink(local).catch((err: unknown) => {
        throw asStorageError(err, 'stat', here);
      })
    : '';
  return {
    exists: true,
    kind: kindOf(s),
    size: Number(s.size),
    allocated: Number(s.blocks * STAT_BLOCK_BYTES),
    linkTarget,
    mtimeMs: Number(s.mtimeMs),
  };
}

function kindOf(s: BigIntStats): FileKind {
  if (s.isFile()) return FileKind.FILE_KIND_FILE;
  if (s.isDirectory()) return FileKind.FILE_KIND_DIRECTORY;
  if (s.isSymbolicLink()) return FileKind.FILE_KIND_SYMLINK;
  return FileKind.FILE_KIND_OTHER;
}
