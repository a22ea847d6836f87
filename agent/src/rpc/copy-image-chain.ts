import { realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { asStorageError } from '../../../common/src/errors.js';
import type {
  CopyImageChainRequest,
  CopyImageChainResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { storedNames } from '../paths/stored-name.js';
import { verifyChain } from '../snapshots/chain-safety.js';
import { readSnapDir, relink } from '../snapshots/snap-dir.js';
import { allLayers, confineTo, copySnapFiles, readSnapChains } from '../snapshots/snap-dir-copy.js';
import { buildSnapDir } from '../snapshots/build-snap-dir.js';
import { assertNotReplacingChain } from './clone-overlay.js';
import { withParents } from '../files/make-parents.js';
import type { AgentContext, CallContext } from './context.js';
import { readImageSource, resolveImageToDisk } from './image-source.js';

/** The entry an image without snapshots is copied to: `disk.N.snap/0`. */
const FIRST_ID = 0;

/**
 * qcow2/shared `ln.ssh` (MIXED mode): a local copy of a persistent image and its snapshot files,
 * `disk.N -> disk.N.snap/<highest>`, whose chain never reads the image datastore. Raw: a plain copy.
 * A repeat rebuilds the same layout from the image.
 */
export async function copyImageChain(
  agent: AgentContext,
  req: CopyImageChainRequest,
  call: CallContext,
): Promise<CopyImageChainResponse> {
  const action = 'copy image chain';
  const r = await resolveImageToDisk(agent, action, req, { imageSnap: true });
  const { source, diskPath, here, what, localSource, disk, diskSnap } = r;
  const imageSnap = r.imageSnap as string;
  return agent.locks.withLock(
    [disk, diskSnap, imageSnap],
    what,
    async () => {
      const started = performance.now();
      const { format, layers } = await readImageSource(agent, localSource, r.format, here, what, call.signal);
      let snapshotId = 0;
      // Made only now, after every check; taken away again if the copy fails.
      try {
        await withParents(dirname(disk), async () => {
          if (format === 'raw') {
            await assertNotReplacingChain(disk, diskSnap, layers, what);
            await agent.copyLocal(await realpath(localSource), disk, {
              sparse: true,
              signal: call.signal,
              progress: call.progress,
            });
          } else {
            snapshotId = await copyQcow2(agent, { localSource, imageSnap, disk, diskSnap, what, call });
          }
        });
      } catch (err) {
        throw asStorageError(err, action, `${here} to ${diskPath}`);
      }
      call.log.info(
        { source, disk: diskPath, format, snapshotId, ms: Math.round(performance.now() - started) },
        'copied chain',
      );
      return { snapshotId };
    },
    call.signal,
  );
}

async function copyQcow2(
  agent: AgentContext,
  p: {
    localSource: string;
    imageSnap: string;
    disk: string;
    diskSnap: string;
    what: string;
    call: CallContext;
  },
): Promise<number> {
  const { what } = p;
  const signal = p.call.signal;
  const snap = await readSnapDir(p.imageSnap, what);
  const from =
    snap.files.size > 0
      ? snap
      : { dir: snap.dir, files: new Map([[FIRST_ID, p.localSource]]), currents: new Map<number, number>() };
  const chains = await readSnapChains(from.files, { what, signal, format: 'qcow2', scope: agent.roots });
  await assertNotReplacingChain(p.disk, p.diskSnap, allLayers(chains), what);
  const short = basename(p.diskSnap);
  const names = storedNames(agent.roots);
  const ids = await buildSnapDir(p.diskSnap, short, async (temp) => {
    const copied = await copySnapFiles({
      from,
      chains,
      to: temp,
      finalDir: p.diskSnap,
      anchor: { dir: p.diskSnap, selfLink: short },
      names,
      copyLocal: agent.copyLocal,
      what,
      signal,
    });
    // The relative names resolve through the temporary directory's own self link: check there.
    const inTemp = confineTo(temp, what, short);
    for (const id of copied) {
      await verifyChain(join(temp, String(id)), {
        what,
        signal,
        format: 'qcow2',
        scope: agent.roots,
        confine: inTemp,
      });
    }
    return copied;
  });
  const latest = Math.max(...ids);
  await relink(p.disk, await names.nameFor(join(p.diskSnap, String(latest)), { dir: dirname(p.disk) }));
  await verifyChain(p.disk, {
    what,
    signal,
    format: 'qcow2',
    scope: agent.roots,
    confine: confineTo(dirname(p.disk), what, 'the VM directory'),
  });
  return latest;
}
