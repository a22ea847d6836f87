import { stat } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type {
  ExportImageRequest,
  ExportImageResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { MAX_EXPORT_TTL_SECONDS } from '../config.js';
import { prepareExport } from '../export/prepare-export.js';
import { inPlaceActiveFile } from '../image-snapshots/current-state.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { formatName, imageFormat } from './image-format.js';
import { requirePath } from './validate.js';

/** A label is a URL path segment and a log field: a plain name, never "." or "..". */
const LABEL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * ExportImage (datastore export, for marketplaces; docs/image-datastore.md#export-for-marketplaces):
 * SOURCE made standalone (a chain flattened into a temporary beside it), hashed, and published on
 * this agent's export listener under a new token. Read-only for the image itself. A repeat
 * publishes a new URL (and, for a chain, a new copy); each ends at its own expiry.
 */
export async function exportImage(
  agent: AgentContext,
  req: ExportImageRequest,
  call: CallContext,
): Promise<ExportImageResponse> {
  const action = 'export';
  const source = requirePath(agent, action, 'source', req.source);
  const format = formatName(agent, action, 'format', req.format);
  if (req.ttlSeconds > MAX_EXPORT_TTL_SECONDS) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${action} on ${agent.name}: ttl_seconds must be at most ${MAX_EXPORT_TTL_SECONDS} (got ${req.ttlSeconds})`,
    );
  }
  if (req.label !== '' && !LABEL.test(req.label)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${action} on ${agent.name}: label must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit (got ${JSON.stringify(req.label.slice(0, 80))})`,
    );
  }
  const here = where(agent, source);
  const what = `${action} ${here}`;
  const exports = agent.exports;
  if (!exports) {
    throw new StorageError(
      'EXPORT_DISABLED',
      `${what}: this agent has no export listener (set export.listen)`,
    );
  }
  const ttlSeconds = req.ttlSeconds || exports.defaultTtlSeconds;
  // SOURCE's own entry (a temporary goes beside it) and the file it leads to (a link into its
  // .snap is followed only inside the roots).
  const entry = await agent.roots.resolve(source, 'source');
  const real = await agent.roots.resolveTarget(source, 'source');
  const st = await stat(real).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new StorageError('NOT_FOUND', `${what}: no such image`);
    throw asStorageError(err, action, here);
  });
  if (!st.isFile()) throw new StorageError('BAD_IMAGE', `${what}: the image is not a regular file`);
  return agent.locks.withLock(
    [entry, `${entry}.snap`],
    what,
    async () => {
      const started = performance.now();
      // The in-place layout keeps the current state in the snap dir's active layer, not SOURCE.
      const current = (await inPlaceActiveFile(agent, entry, format, what)) ?? real;
      const prepared = await prepareExport(entry, current, format, {
        what,
        signal: call.signal,
        scope: agent.roots,
        holdTemp: (e) => exports.holdTemp(e),
        progress: call.progress,
      });
      const { url, entry: published } = exports.publish(
        {
          path: prepared.path,
          identity: prepared.identity,
          size: prepared.size,
          mtimeNs: prepared.mtimeNs,
          md5: prepared.md5,
          source,
          name: req.label || `image.${format}`,
          ...(prepared.temp ? { dispose: prepared.temp.release } : {}),
        },
        ttlSeconds,
      );
      // The URL holds the token, a secret: the log names the export by its id.
      call.log.info(
        {
          source,
          format,
          exportId: published.id,
          bytes: prepared.size,
          layers: prepared.layers,
          flattened: prepared.temp !== undefined,
          expiresAt: new Date(published.expiresAt).toISOString(),
          ms: Math.round(performance.now() - started),
        },
        'image exported',
      );
      return {
        url,
        md5: prepared.md5,
        sizeBytes: prepared.size,
        virtualSize: prepared.virtualSize,
        format: imageFormat(format),
      };
    },
    call.signal,
  );
}
