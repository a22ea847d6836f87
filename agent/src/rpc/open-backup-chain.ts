import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import { tempName } from '../../../common/src/files/temp-name.js';
import type {
  OpenBackupChainRequest,
  OpenBackupChainResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { chainShape } from '../backup-repo/chain-paths.js';
import { mergePinnedChain } from '../backup-repo/pinned-chain.js';
import { checkChainFiles, verifyChainDigests } from '../backup-repo/verify-chain-files.js';
import { describe } from '../qemu/qemu-img.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requireField } from './validate.js';

/**
 * OpenBackupChain: one restore point of one disk of a grpc_backup repository as a standalone
 * qcow2, offered to one receiver (docs/backups.md#restoring-from-the-repository). Every file is
 * checked against its directory's SHA256SUMS before anything is offered. A chain of several files
 * (or a lone file whose header names a backing file) is merged with every layer pinned
 * (pinned-chain.ts) into a scratch staging file in the `<vmid>` directory, under a dot-name the
 * listings skip and the agent's stale-temporary sweep removes after a crash, while the files'
 * digests are checked on the other core; a mismatch stops the merge and removes the staging file.
 * The data path removes it once sent or when the ticket expires.
 */
export async function openBackupChain(
  agent: AgentContext,
  req: OpenBackupChainRequest,
  call: CallContext,
): Promise<OpenBackupChainResponse> {
  const action = 'open backup chain';
  requireField(agent, action, 'receiver_name', req.receiverName);
  const last = req.chain[req.chain.length - 1] ?? '';
  const what = `${action} ${where(agent, last)}`;
  const shape = chainShape(req.chain, what);
  const dirs = await Promise.all(shape.files.map((f) => agent.roots.resolve(f.dir, 'chain')));
  return agent.locks.withLock(
    dirs,
    what,
    async () => {
      const started = performance.now();
      const checked = await checkChainFiles(shape.files, {
        roots: agent.roots,
        host: agent.name,
        signal: call.signal,
      });
      const locals = checked.map((c) => c.local);
      const top = locals[locals.length - 1] as string;
      const topInfo = await describe(top, 'qcow2', { what });
      const alone = locals.length === 1 && topInfo.backingFilename === undefined;
      const ticketReq = { path: last, receiverName: req.receiverName, ttlSeconds: req.ttlSeconds };
      if (alone) {
        await verifyChainDigests(checked, call.signal);
        const sent = await agent.dataPath.openSend(ticketReq).catch((err: unknown) => {
          throw asStorageError(err, action, where(agent, last));
        });
        call.log.info(
          { chain: req.chain, ms: Math.round(performance.now() - started) },
          'backup chain offered as it is',
        );
        return {
          ticket: sent.ticket,
          dataAddress: sent.dataAddress,
          dataBytes: sent.dataBytes,
          virtualSize: topInfo.virtualSize,
        };
      }
      // In `<vmid>/`, which the agent's start-up sweep reaches when its root is BASE_PATH or its parent.
      const bidDir = dirname(top);
      const staging = join(
        dirname(bidDir),
        tempName(`${basename(bidDir)}.${basename(top)}`, 'tmp', agent.name),
      );
      const release = (): Promise<void> => rm(staging, { force: true });
      try {
        await verifiedWhileMerging(
          (signal) => verifyChainDigests(checked, signal),
          (signal) =>
            mergePinnedChain(locals, staging, {
              what: `${what}: merging ${locals.length} layers`,
              signal,
              scratch: true,
              progress: call.progress,
            }),
          call.signal,
        );
        const info = await describe(staging, 'qcow2', { what });
        if (info.backingFilename !== undefined)
          throw new StorageError('BAD_LAYOUT', `${what}: the merged image still names a backing file`);
        const sent = await agent.dataPath.openStagedFile({ ...ticketReq, file: staging, release });
        call.log.info(
          {
            chain: req.chain,
            layers: locals.length,
            dataBytes: sent.dataBytes,
            ms: Math.round(performance.now() - started),
          },
          'backup chain merged and offered',
        );
        return {
          ticket: sent.ticket,
          dataAddress: sent.dataAddress,
          dataBytes: sent.dataBytes,
          virtualSize: info.virtualSize,
        };
      } catch (err) {
        await release();
        throw asStorageError(err, action, where(agent, last));
      }
    },
    call.signal,
  );
}

/**
 * Runs the digest check and the merge side by side; the first to fail stops the other, and the
 * check's error wins (a merge stopped because a file is corrupt reports the corrupt file). Both
 * have settled (qemu-img has exited) when this returns or throws.
 */
async function verifiedWhileMerging(
  verify: (signal: AbortSignal) => Promise<void>,
  merge: (signal: AbortSignal) => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  const stop = new AbortController();
  const both = AbortSignal.any([signal, stop.signal]);
  const failFast = <T>(p: Promise<T>): Promise<T> =>
    p.catch((err: unknown) => {
      stop.abort(err);
      throw err;
    });
  const [checked, merged] = await Promise.allSettled([failFast(verify(both)), failFast(merge(both))]);
  if (checked.status === 'rejected') throw checked.reason;
  if (merged.status === 'rejected') throw merged.reason;
}
