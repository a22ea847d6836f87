import { lstat, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type {
  SaveImageChainRequest,
  SaveImageChainResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { isInside } from '../paths/roots.js';
import { storedNames } from '../paths/stored-name.js';
import { type ImageFormat } from '../qemu/qemu-img.js';
import { verifyChain } from '../snapshots/chain-safety.js';
import { readDisk, readSnapDir, relink } from '../snapshots/snap-dir.js';
import { confineTo, copySnapFiles, readSnapChains } from '../snapshots/snap-dir-copy.js';
import { buildSnapDir } from '../snapshots/build-snap-dir.js';
import { formatName } from './image-format.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requirePath } from './validate.js';

/**
 * qcow2/shared `mvds.ssh` (MIXED mode): the local disk of a persistent image (CopyImageChain's
 * layout) goes back to the image datastore: `<source>.snap/` rebuilt from `disk.N.snap/` with the
 * backing names OpenNebula's mvds.ssh writes (`<hash>.snap/K`, through the self link, so the chain
 * opens through `<source>` and from the snap dir on every host) and
 * `<source> -> <hash>.snap/<latest>` (relative); a plain disk file is copied over `<source>`. The
 * VM directory is only read, so a repeat gives the same result.
 */
export async function saveImageChain(
  agent: AgentContext,
  req: SaveImageChainRequest,
  call: CallContext,
): Promise<SaveImageChainResponse> {
  const action = 'save image chain';
  const diskPath = requirePath(agent, action, 'disk_path', req.diskPath);
  const source = requirePath(agent, action, 'source', req.source);
  const format = formatName(agent, action, 'format', req.format);
  const here = where(agent, diskPath);
  const what = `${action} ${here} to ${source}`;
  if (diskPath === source) {
    throw new StorageError('INVALID_ARGUMENT', `${what}: disk_path is the source itself`);
  }
  const disk = await agent.roots.resolve(diskPath, 'disk_path');
  await agent.roots.resolveTarget(diskPath, 'disk_path');
  const diskSnap = await agent.roots.resolve(`${diskPath}.snap`, 'disk_path');
  const localSource = await agent.roots.resolve(source, 'source');
  await agent.roots.resolveTarget(source, 'source');
  const sourceSnap = await agent.roots.resolve(`${source}.snap`, 'source');
  await agent.roots.resolveTarget(`${source}.snap`, 'source');
  return agent.locks.withLock(
    [disk, diskSnap, localSource, sourceSnap],
    what,
    async () => {
      const started = performance.now();
      const st = await lstat(disk).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw new StorageError('NOT_FOUND', `${what}: the disk does not exist`);
        throw asStorageError(err, 'disk_path', here);
      });
      let snapshotId = 0;
      let saved: string;
      try {
        const p = { disk, diskSnap, localSource, sourceSnap, format, what, signal: call.signal };
        if (await alreadyInPlace(p)) {
          saved = 'in place';
        } else if (st.isSymbolicLink()) {
          snapshotId = await saveQcow2(agent, p);
          saved = 'snap dir';
        } else {
          await saveFile(agent, p);
          saved = 'file';
        }
      } catch (err) {
        throw asStorageError(err, action, `${here} to ${source}`);
      }
      call.log.info(
        { disk: diskPath, source, saved, snapshotId, ms: Math.round(performance.now() - started) },
        'saved chain',
      );
      return { snapshotId };
    },
    call.signal,
  );
}

interface SaveTarget {
  disk: string;
  diskSnap: string;
  localSource: string;
  sourceSnap: string;
  /** The disk's format (DISK/FORMAT): a plain disk file is read as this. */
  format: ImageFormat;
  what: string;
  signal: AbortSignal;
}

/** The disk already is the image (a LinkImage disk): the VM wrote into the image datastore. */
async function alreadyInPlace(p: SaveTarget): Promise<boolean> {
  const real = await realpath(p.disk).catch(() => undefined);
  if (real === undefined) return false;
  const source = await realpath(p.localSource).catch(() => undefined);
  const snap = await realpath(p.sourceSnap).catch(() => undefined);
  return real === source || (snap !== undefined && isInside(real, snap));
}

async function saveQcow2(agent: AgentContext, p: SaveTarget): Promise<number> {
  const { what, signal } = p;
  const snap = await readSnapDir(p.diskSnap, what);
  const state = await readDisk(p.disk, snap, what, storedNames(agent.roots));
  const latest = Math.max(...snap.files.keys());
  if (state.kind !== 'linked' || state.activeId !== latest) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${what}: ${basename(p.disk)} does not point at ${snap.short}/${latest}, the highest numbered file`,
    );
  }
  const chains = await readSnapChains(snap.files, { what, signal, format: 'qcow2', scope: agent.roots });
  const names = storedNames(agent.roots);
  const selfLink = `${basename(p.localSource)}.snap`;
  await buildSnapDir(p.sourceSnap, selfLink, (temp) =>
    copySnapFiles({
      from: snap,
      chains,
      to: temp,
      finalDir: p.sourceSnap,
      anchor: { dir: p.sourceSnap, selfLink },
      names,
      copyLocal: agent.copyLocal,
      what,
      signal,
    }),
  );
  const linkText = await names.nameFor(join(p.sourceSnap, String(latest)), { dir: dirname(p.localSource) });
  await relink(p.localSource, linkText);
  await verifyChain(p.localSource, {
    what,
    signal,
    format: 'qcow2',
    scope: agent.roots,
    confine: confineTo(p.sourceSnap, what, 'the snap dir'),
  });
  return latest;
}

/** A plain disk file (raw, or a standalone qcow2) is copied over the image. */
async function saveFile(agent: AgentContext, p: SaveTarget): Promise<void> {
  const layers = await verifyChain(p.disk, {
    what: p.what,
    signal: p.signal,
    format: p.format,
    scope: agent.roots,
  });
  if (layers.length > 1) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${p.what}: the disk file has a backing file; it cannot replace the image`,
    );
  }
  await agent.copyLocal(p.disk, p.localSource, { sparse: true, signal: p.signal });
}
