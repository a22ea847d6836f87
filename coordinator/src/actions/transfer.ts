import { FileKind } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { ActionContext } from './action-context.js';
import { dirname, formatHostPath, type HostPath } from './host-path.js';
import { withMadeDirectories } from './made-directories.js';
import { MIB } from '../../../common/src/units.js';
import { namingClockSkew } from '../agents/clock-skew.js';

/**
 * Copies a file or directory tree from one host's datastore to another's (replacing the
 * destination atomically). Same host: the agent copies with the kernel. Different hosts: the
 * source agent opens a single-use ticket and the destination agent pulls the data extents over
 * the data path (the ticket is bound to its certificate name), checks the checksums and renames
 * into place.
 */
export async function transfer(
  ctx: ActionContext,
  from: HostPath,
  to: HostPath,
  opts: { sparse: boolean },
): Promise<number> {
  const started = performance.now();
  const fromName = ctx.agents.canonical(from.host);
  const toName = ctx.agents.canonical(to.host);
  // The destination's directory may be new (a first image in a datastore, a new VM directory); a
  // copy that fails takes it away again.
  const bytes = await withMadeDirectories(ctx, async (dirs) => {
    await dirs.make({ host: to.host, path: dirname(to.path) });
    if (fromName === toName) {
      const r = await ctx.ops.call(to.host, 'copy', {
        source: from.path,
        destination: to.path,
        sparse: opts.sparse,
      });
      return r.bytes;
    }
    try {
      // The ticket is bound to the receiving agent: no other agent of the cloud can redeem it.
      const sending = await ctx.ops.call(from.host, 'openSend', {
        path: from.path,
        ttlSeconds: 0,
        receiverName: ctx.agents.get(to.host).agent.certName,
      });
      const r = await ctx.ops.call(to.host, 'receive', {
        ticket: sending.ticket,
        dataAddress: sending.dataAddress,
        sourceName: ctx.agents.get(from.host).agent.certName,
        destination: to.path,
        sparse: opts.sparse,
      });
      return r.bytes;
    } catch (err) {
      // Two agents' clocks decide whether their certificates are valid: a skewed one is named.
      throw await namingClockSkew(err, ctx.agents, [from.host, to.host], ctx.requestId);
    }
  });
  const seconds = Math.max((performance.now() - started) / 1000, 0.001);
  ctx.info(
    `${ctx.action}: copied ${formatHostPath(from)} to ${formatHostPath(to)}: ${(bytes / MIB).toFixed(1)} MiB of data in ${seconds.toFixed(2)} s (${(bytes / MIB / seconds).toFixed(0)} MiB/s)`,
  );
  return bytes;
}

/** Whether `path` exists on `host` and what it is. */
export async function kindOf(ctx: ActionContext, at: HostPath): Promise<FileKind | undefined> {
  const st = await ctx.ops.call(at.host, 'stat', { path: at.path, follow: false });
  return st.exists ? st.kind : undefined;
}

export { FileKind };
