import { rm } from 'node:fs/promises';
import { asStorageError } from '../../../common/src/errors.js';
import type { RestoreTpmRequest, RestoreTpmResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { checkAgainstSums } from '../restore/archive-sum.js';
import { TPM_ARCHIVE, TPM_DIR, extractTpmArchive } from '../restore/tpm-archive.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requirePath } from './validate.js';

const METHOD = 'RestoreTpm';

/**
 * TM restore of a VM's vTPM state (docs/backups.md#vtpm): the received archive replaces
 * `<vm_dir>/tpm`, once it matches the backup's SHA256SUMS. Both are removed whatever happens.
 */
export async function restoreTpm(
  agent: AgentContext,
  req: RestoreTpmRequest,
  call: CallContext,
): Promise<RestoreTpmResponse> {
  const archive = requirePath(agent, METHOD, 'archive', req.archive);
  const vmDir = requirePath(agent, METHOD, 'vm_dir', req.vmDir);
  const sums = requirePath(agent, METHOD, 'sums', req.sums);
  const what = `restore the vTPM state of ${where(agent, vmDir)} from ${archive}`;
  const localArchive = await agent.roots.resolve(archive, 'archive');
  const localSums = await agent.roots.resolve(sums, 'sums');
  const localVmDir = await agent.roots.resolveTarget(vmDir, 'vm_dir');
  const tpm = `${localVmDir}/${TPM_DIR}`;
  return agent.locks.withLock(
    [localArchive, localSums, tpm],
    what,
    async () => {
      try {
        await checkAgainstSums(localArchive, localSums, TPM_ARCHIVE, what);
        const files = await extractTpmArchive(localArchive, localVmDir, { what, signal: call.signal });
        call.log.info({ vmDir, files }, 'vTPM state restored');
        return { files };
      } catch (err) {
        throw asStorageError(err, 'restore the vTPM state of', where(agent, vmDir));
      } finally {
        await rm(localArchive, { force: true });
        await rm(localSums, { force: true });
      }
    },
    call.signal,
  );
}
