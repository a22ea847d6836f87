import { lstat } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type {
  CopyDiskLiveRequest,
  CopyDiskLiveResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import { withGuestHeld } from '../libvirt/freeze.js';
import { domainLockKey } from '../locks/path-locks.js';
import { blockCopyTo } from '../live-snapshots/block-copy.js';
import { liveTarget, matchingDisk, runningDisks } from '../live-snapshots/live-domain.js';
import { convert, imageInfo } from '../qemu/qemu-img.js';
import { readChain } from '../qemu/safe-chain.js';
import { formatName } from './image-format.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requirePath } from './validate.js';

/**
 * cpds of a running VM's disk (HOTPLUG_SAVEAS, docs/opennebula/tm-actions.md#cpds): a libvirt block copy of the whole
 * chain into `destination`. When libvirt refuses the block copy (not for a busy disk or a missing
 * domain), the guest is held still (FS_FREEZE; NONE still suspends, as OpenNebula's fallback does)
 * and the disk is copied with qemu-img convert -U, then let go. Nothing is left on failure.
 */
export async function copyDiskLive(
  agent: AgentContext,
  req: CopyDiskLiveRequest,
  call: CallContext,
): Promise<CopyDiskLiveResponse> {
  const action = 'copy disk live';
  const diskPath = requirePath(agent, action, 'disk_path', req.diskPath);
  const destPath = requirePath(agent, action, 'destination', req.destination);
  const format = formatName(agent, action, 'format', req.format);
  const sourceFormat = formatName(agent, action, 'source_format', req.sourceFormat);
  if (!req.live) throw new StorageError('INVALID_ARGUMENT', `${action} on ${agent.name}: live is required`);
  const what = `${action} ${where(agent, diskPath)} to ${destPath}`;
  const live = liveTarget(req.live, { uri: agent.libvirtUri, what, signal: call.signal, log: call.log });
  const diskEntry = await agent.roots.resolve(diskPath, 'disk_path');
  const dest = await agent.roots.resolve(destPath, 'destination');
  // One critical section with every other live action on the disk and on the domain: what disk.N
  // leads to is read inside it (a snapshot taken meanwhile moved it).
  return agent.locks
    .withLock(
      [diskEntry, dest, domainLockKey(live.domain)],
      what,
      async () => {
        const started = performance.now();
        const diskFile = await agent.roots.resolveTarget(diskPath, 'disk_path');
        if (
          await lstat(dest).then(
            () => true,
            () => false,
          )
        ) {
          throw new StorageError('ALREADY_EXISTS', `${what}: the destination already exists`);
        }
        const running = await matchingDisk(live, diskFile, await runningDisks(live));
        // libvirt opens the disk as its driver type says: it must be the format oned knows.
        if (running.format !== sourceFormat) {
          throw new StorageError(
            'BAD_LAYOUT',
            `${what}: ${live.target} of ${live.domain} runs as ${running.format}, but DISK/FORMAT is ${sourceFormat}`,
          );
        }
        // Checked before anything reads it, whichever way the copy then goes.
        const [top] = await readChain(diskFile, sourceFormat, {
          what,
          signal: call.signal,
          scope: agent.roots,
        });
        let method: string;
        try {
          await blockCopyTo(
            live,
            dest,
            format,
            call.progress && top && { report: call.progress, phase: 'block-copy', total: top.virtualSize },
          );
          method = 'blockcopy';
        } catch (err) {
          if (
            err instanceof StorageError &&
            ['BUSY', 'DOMAIN_NOT_FOUND', 'DOMAIN_NOT_RUNNING', 'NO_SPACE'].includes(err.reason)
          ) {
            throw err;
          }
          if (call.signal.aborted) throw asStorageError(err, action, where(agent, diskPath));
          call.log.warn(
            { err: (err as Error).message, domain: live.domain },
            'block copy refused: copying the held-still disk',
          );
          const mode = live.freeze === 'NONE' ? 'SUSPEND' : live.freeze;
          method = await withGuestHeld(
            live.domain,
            mode,
            { ...live.virsh, log: call.log },
            async (heldBy) => {
              await writeAtomically(dest, (tmp) =>
                convert(diskFile, tmp, {
                  what,
                  signal: call.signal,
                  sourceFormat,
                  format,
                  sparse: true,
                  progress: call.progress,
                }),
              );
              return heldBy;
            },
          );
        }
        const info = await imageInfo(dest, format, { what });
        call.log.info(
          { disk: diskPath, destination: destPath, method, ms: Math.round(performance.now() - started) },
          'running disk copied',
        );
        return { virtualSize: info.virtualSize, actualSize: info.actualSize, method };
      },
      call.signal,
    )
    .catch((err: unknown) => {
      throw asStorageError(err, action, where(agent, diskPath));
    });
}
