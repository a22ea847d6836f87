import { readlink, realpath } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type { RelinkDiskRequest, RelinkDiskResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { type StoredNames, storedNames } from '../paths/stored-name.js';
import { rebase } from '../qemu/qemu-img.js';
import { verifyChain } from '../snapshots/chain-safety.js';
import {
  type SnapDir,
  ensureSnapDir,
  fileOf,
  linkTextFor,
  readSnapDir,
  relink,
  shownOf,
  snapshotIdOf,
} from '../snapshots/snap-dir.js';
import { type SnapChains, confineTo, readSnapChains } from '../snapshots/snap-dir-copy.js';
import { formatName } from './image-format.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requireField, requirePath } from './validate.js';

/**
 * tm/local clone/ln of an image whose SOURCE links into its own snap dir (OpenNebula's local
 * `mvds` leaves `SOURCE -> <hash>.snap/N`), after the coordinator copied that snap dir to
 * `disk.N.snap`: OpenNebula's local driver relinks `disk.N -> disk.N.snap/<basename of the link>`.
 * The copied names (bare `K` from tm/local, `<hash>.snap/K` from mvds.ssh) resolve only from the
 * snap dir, so they become `disk.N.snap/K`; the call succeeds only once the disk opens through
 * disk.N, as libvirt opens it. A repeat finds the same names and links: nothing changes.
 * tm/local `mvds` of a chain calls it with SOURCE as the disk once `disk.N.snap` was copied to
 * `<SOURCE>.snap`: the same steps give OpenNebula's tm/local image layout, `SOURCE -> <hash>.snap/K`
 * with `<hash>.snap/K` names (docs/image-datastore.md#layouts).
 */
export async function relinkDisk(
  agent: AgentContext,
  req: RelinkDiskRequest,
  call: CallContext,
): Promise<RelinkDiskResponse> {
  const action = 'relink disk';
  const diskPath = requirePath(agent, action, 'disk_path', req.diskPath);
  const active = requireField(agent, action, 'active', req.active);
  const format = formatName(agent, action, 'format', req.format);
  const here = where(agent, diskPath);
  const what = `${action} ${here}`;
  const id = snapshotIdOf(active);
  if (id === undefined) {
    throw new StorageError('INVALID_ARGUMENT', `${what}: active "${active}" is not a snapshot number`);
  }
  const disk = await agent.roots.resolve(diskPath, 'disk_path');
  const snapDir = await agent.roots.resolveTarget(`${diskPath}.snap`, 'disk_path');
  return agent.locks.withLock(
    [disk, snapDir],
    what,
    async () => {
      const started = performance.now();
      const names = storedNames(agent.roots);
      try {
        const snap = await readSnapDir(snapDir, what);
        if (!snap.files.has(id)) {
          throw new StorageError(
            'NOT_FOUND',
            `${what}: ${shownOf(snap, id)} does not exist (the image's snap dir holds no file ${id})`,
          );
        }
        // Every layer must be a file of the copied directory: the copy reads nothing else.
        const confine = confineTo(snapDir, what, snap.short);
        const opts = { what, signal: call.signal, confine, format, scope: agent.roots };
        const chains = await readSnapChains(snap.files, opts);
        await ensureSnapDir(snap, true, what);
        const renamed = await renameBackings(snap, chains, names, opts);
        const text = await linkTextFor(disk, snap, id, names);
        if ((await readlink(disk).catch(() => undefined)) !== text) await relink(disk, text);
        await verifyChain(disk, opts);
        call.log.info(
          { disk: diskPath, active: id, renamed, ms: Math.round(performance.now() - started) },
          'disk relinked',
        );
      } catch (err) {
        throw asStorageError(err, action, here);
      }
      return {};
    },
    call.signal,
  );
}

/** Rewrites (rebase -u) each backing name that is not already the rule's name for its entry. */
async function renameBackings(
  snap: SnapDir,
  chains: SnapChains,
  names: StoredNames,
  opts: { what: string; signal: AbortSignal },
): Promise<number> {
  const byReal = new Map<string, number>();
  for (const [k, entry] of snap.files) byReal.set(await realpath(entry), k);
  const anchor = { dir: snap.dir, selfLink: snap.short };
  let renamed = 0;
  for (const [k, [top, backing]] of chains) {
    if (top?.format !== 'qcow2' || backing === undefined) continue;
    const backingId = byReal.get(await realpath(backing.filename));
    if (backingId === undefined) {
      throw new StorageError(
        'BAD_LAYOUT',
        `${opts.what}: ${shownOf(snap, k)} is backed by ${backing.filename}, not by a snapshot file of ${snap.short}`,
      );
    }
    const name = await names.nameFor(fileOf(snap, backingId), anchor);
    if (top.backingFilename === name) continue;
    await rebase(fileOf(snap, k), { ...opts, unsafe: true, backing: { name, format: backing.format } });
    renamed++;
  }
  return renamed;
}
