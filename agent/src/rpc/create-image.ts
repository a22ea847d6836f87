import { dirname } from 'node:path';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type {
  CreateImageRequest,
  CreateImageResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import { FILESYSTEMS, type MakeImageFormat, makeImage } from '../images/make-image.js';
import { imageInfo } from '../qemu/qemu-img.js';
import { makeParents } from '../files/make-parents.js';
import { formatName } from './image-format.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { oneOf, requirePath, requirePositive } from './validate.js';

/**
 * mkfs options travel as separate arguments, never through a shell; still, one that names a path
 * (`-d /root` populates the filesystem from a directory, `-J device=` writes an external journal)
 * would reach outside the datastore, so anything beyond plain option characters is refused.
 */
const SAFE_OPTION = /^[A-Za-z0-9._=,:^+-]+$/;

/**
 * tm mkimage / mkswap: a new empty (or freshly formatted) image, built under a temporary name
 * beside `path` and renamed into place. A repeat replaces it with an identical empty image.
 */
export async function createImage(
  agent: AgentContext,
  req: CreateImageRequest,
  call: CallContext,
): Promise<CreateImageResponse> {
  const action = 'create image';
  const path = requirePath(agent, action, 'path', req.path);
  const sizeMb = requirePositive(agent, action, 'size_mb', req.sizeMb);
  const imageFormat = formatName(agent, action, 'format', req.format);
  if (req.swap && imageFormat !== 'raw') {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${action} on ${agent.name}: format must be raw with swap (got ${imageFormat})`,
    );
  }
  // A swap area is a raw image made with mkswap (images/make-image.ts).
  const format: MakeImageFormat = req.swap ? 'swap' : imageFormat;
  const filesystem =
    req.filesystem === '' ? undefined : oneOf(agent, action, 'filesystem', req.filesystem, FILESYSTEMS);
  if (req.swap && filesystem !== undefined) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${action} on ${agent.name}: filesystem must be empty with swap (got "${filesystem}")`,
    );
  }
  const filesystemOptions = req.filesystemOptions.split(/\s+/).filter((o) => o !== '');
  const bad = filesystemOptions.find((o) => !SAFE_OPTION.test(o));
  if (bad !== undefined) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${action} on ${agent.name}: filesystem_options: ${JSON.stringify(bad)} may only hold letters, digits and . _ = , : ^ + -`,
    );
  }
  if (filesystemOptions.length > 0 && filesystem === undefined) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${action} on ${agent.name}: filesystem_options need a filesystem`,
    );
  }
  const local = await agent.roots.resolve(path, 'path');
  const here = where(agent, path);
  const what = `${action} ${here}`;
  return agent.locks.withLock(
    [local],
    what,
    async () => {
      const started = performance.now();
      const made = await makeParents(dirname(local)).catch((err: unknown) => {
        throw asStorageError(err, action, here);
      });
      try {
        await writeAtomically(local, (temp) =>
          makeImage(temp, {
            sizeMb,
            format,
            ...(filesystem !== undefined ? { filesystem } : {}),
            filesystemOptions,
            sparse: req.sparse,
            signal: call.signal,
            what,
          }),
        );
      } catch (err) {
        await made.undo();
        throw asStorageError(err, action, here);
      }
      // The agent wrote this image itself: swap is a raw image.
      const info = await imageInfo(local, format === 'qcow2' ? 'qcow2' : 'raw', {
        what,
        signal: call.signal,
      });
      call.log.info(
        { path, sizeMb, format, filesystem, sparse: req.sparse, ms: Math.round(performance.now() - started) },
        'image created',
      );
      return { virtualSize: info.virtualSize, actualSize: info.actualSize };
    },
    call.signal,
  );
}
