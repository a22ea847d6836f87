import { WHOLE_DISK_TIMEOUT_MS } from '../../../common/src/tools/run-tool.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import { requireNoBlockJob } from '../libvirt/domain.js';
import { type BlockJobProgress, watchBlockJob } from '../libvirt/block-job-wait.js';
import { virsh } from '../libvirt/virsh.js';
import type { ImageFormat } from '../qemu/qemu-img.js';
import type { LiveTarget } from './live-domain.js';

/**
 * A standalone copy of a running domain's disk at `destination` (the whole chain, flattened):
 * `virsh blockcopy --transient-job` into a temporary name beside it, then a rename.
 * The domain keeps running on its own disk; a failed or cancelled copy leaves nothing behind.
 */
export async function blockCopyTo(
  t: LiveTarget,
  destination: string,
  format: ImageFormat,
  progress?: BlockJobProgress,
): Promise<void> {
  await requireNoBlockJob(t.domain, t.target, t.virsh);
  await writeAtomically(destination, async (tmp) => {
    // Started without --wait; once libvirt says the copy is ready, `blockjob --abort` ends the job
    // and leaves the copy standalone (what --finish does), the domain still on its own disk. A
    // cancelled or failed wait aborts the job (block-job-wait.ts), so the disk is free again.
    const watch = watchBlockJob(t.domain, t.target, 'Block Copy', t.virsh);
    try {
      await virsh(
        ['blockcopy', t.domain, t.target, '--dest', tmp, '--format', format, '--transient-job'],
        t.virsh,
      );
      await watch.ended({ whenReady: 'finish', progress, timeoutMs: WHOLE_DISK_TIMEOUT_MS });
    } catch (err) {
      // Cancelled while the job was being started: it may run all the same.
      if (t.virsh.signal?.aborted) {
        await virsh(['blockjob', t.domain, t.target, '--abort'], {
          uri: t.virsh.uri,
          what: t.virsh.what,
        }).catch(() => undefined);
      }
      throw err;
    } finally {
      watch.close();
    }
  });
}
