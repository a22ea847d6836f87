import { readFile, rm } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type {
  SetMonitorMarkerRequest,
  SetMonitorMarkerResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { writeFileAtomic } from '../../../common/src/files/atomic-file.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requirePath } from './validate.js';
import { makeDirectory } from '../files/make-directory.js';
import { SMALL_FILE_MODE } from '../files/modes.js';

/** The file the host probes look for in a system datastore directory (monitor_ds.rb). */
export const MONITOR_MARKER = '.monitor';
/** A TM driver name as oned.conf spells it (ssh, qcow2, grpc_qcow2, replica...). */
const DRIVER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * enable_local_monitoring / disable_local_monitoring: writes `<datastore_dir>/.monitor` with the
 * driver name (newline-terminated, as `echo` wrote it), or removes it for an empty driver.
 * A repeat finds the same content (or no file) and does nothing.
 */
export async function setMonitorMarker(
  agent: AgentContext,
  req: SetMonitorMarkerRequest,
  call: CallContext,
): Promise<SetMonitorMarkerResponse> {
  const method = 'set monitor marker';
  const dir = requirePath(agent, method, 'datastore_dir', req.datastoreDir);
  if (req.driver !== '' && !DRIVER_NAME.test(req.driver)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${method} on ${agent.name}: driver "${req.driver}" is not a driver name`,
    );
  }
  const markerPath = `${dir}/${MONITOR_MARKER}`;
  const localDir = await agent.roots.resolve(dir, 'datastore_dir');
  const local = await agent.roots.resolve(markerPath, 'datastore_dir');
  const here = where(agent, markerPath);
  const content = `${req.driver}\n`;
  return agent.locks.withLock(
    [local],
    `${method} ${here}`,
    async () => {
      let changed = false;
      try {
        const current = await readFile(local, 'utf8').catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return undefined;
          throw err;
        });
        if (req.driver === '' && current !== undefined) {
          await rm(local, { force: true });
          changed = true;
        } else if (req.driver !== '' && current?.trim() !== req.driver) {
          await makeDirectory(localDir);
          // SMALL_FILE_MODE: the agent's umask would leave it 0640, and the probes may read it as another user.
          await writeFileAtomic(local, content, { mode: SMALL_FILE_MODE });
          changed = true;
        }
      } catch (err) {
        throw asStorageError(err, method, here);
      }
      if (changed) {
        call.log.info(
          { path: markerPath, driver: req.driver },
          req.driver ? 'monitor marker written' : 'monitor marker removed',
        );
      }
      return {};
    },
    call.signal,
  );
}
