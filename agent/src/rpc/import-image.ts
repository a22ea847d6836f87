import { open, rm } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import { tempName } from '../../../common/src/files/temp-name.js';
import { shownUrl } from '../../../common/src/shown-url.js';
import {
  ImageFormat,
  type ImportImageRequest,
  type ImportImageResponse,
  type RemoteImportSource,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { makeParents, type MadeDirectories } from '../files/make-parents.js';
import { type StagedJob, adoptStaged } from '../import/adopt-staged.js';
import { fileSource } from '../import/file-source.js';
import { type ImportOutcome, runImport } from '../import/import-pipeline.js';
import { openLocalImport, resolveLocalImport } from '../import/local-source.js';
import { urlSource } from '../import/url-source.js';
import type { ImageFormat as QemuFormat } from '../qemu/qemu-img.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { formatName, imageFormat } from './image-format.js';
import { importSourceField } from './import-source-field.js';
import { requirePath } from './validate.js';

/**
 * ImportImage (datastore cp): registers an image from a URL, a local upload or another agent's
 * file into `destination`, through the import pipeline (import/import-pipeline.ts,
 * docs/image-datastore.md#registering-an-image-cp-on-the-agent), holding the destination's lock.
 * The destination's missing directories are made and taken away again on failure. A repeat fetches
 * again and replaces the image.
 */
export async function importImage(
  agent: AgentContext,
  req: ImportImageRequest,
  call: CallContext,
): Promise<ImportImageResponse> {
  const method = 'import image';
  const destination = requirePath(agent, method, 'destination', req.destination);
  const field = importSourceField(agent, method, req);
  const convertTo: QemuFormat | undefined =
    req.convertTo === ImageFormat.IMAGE_FORMAT_UNSPECIFIED
      ? undefined
      : formatName(agent, method, 'convert_to', req.convertTo);
  const label = req.label || 'image';
  const from =
    field.kind === 'url'
      ? shownUrl(field.url)
      : field.kind === 'local'
        ? where(agent, field.local.path)
        : `${field.remote.sourceName} (${field.remote.dataAddress})`;
  const what = `cp ${label} from ${from} into ${where(agent, destination)}`;
  const local = await agent.roots.resolve(destination, 'destination');
  const job: StagedJob = {
    destination: local,
    md5: req.md5,
    sha1: req.sha1,
    noDecompress: req.noDecompress,
    plainFile: req.plainFile,
    convertTo,
    sparse: req.sparse,
    what,
    signal: call.signal,
    log: call.log,
    progress: call.progress,
  };
  return agent.locks.withLock(
    [local],
    what,
    async () => {
      const started = performance.now();
      let made: MadeDirectories | undefined;
      let outcome: ImportOutcome;
      try {
        made = await makeParents(dirname(local));
        if (field.kind === 'url') {
          const source = urlSource(field.url, { ca: agent.imports.ca, what });
          outcome = await runImport({ ...job, source, limitBytesPerSecond: req.limitBytesPerSecond });
        } else if (field.kind === 'local') {
          const real = await resolveLocalImport(field.local, agent.imports.dirs, what);
          outcome = await fromFile(real, `${agent.name}:${real}`, what, (source) =>
            runImport({ ...job, source, limitBytesPerSecond: req.limitBytesPerSecond }),
          );
        } else {
          const name = `${field.remote.sourceName}:(received)`;
          // Kept as received when it needs no decompression or conversion (one write, not two).
          outcome = await fromRemote(
            agent,
            field.remote,
            destination,
            local,
            call,
            async (staging) =>
              (await adoptStaged(job, staging, name)) ??
              fromFile(staging, name, what, (source) =>
                runImport({ ...job, source, limitBytesPerSecond: 0 }),
              ),
          );
        }
      } catch (err) {
        await made?.undo();
        // Logged once everything is cleaned up: nothing of this import is left on disk now.
        call.log.warn(
          {
            destination,
            source: from,
            reason: (err as StorageError).reason ?? 'INTERNAL',
            cancelled: call.signal.aborted,
          },
          'image import failed, nothing left',
        );
        throw err;
      }
      call.log.info(
        { destination, source: from, ...outcome, ms: Math.round(performance.now() - started) },
        'image imported',
      );
      return {
        format: imageFormat(outcome.format),
        virtualSize: outcome.virtualSize,
        actualSize: outcome.actualSize,
        fetchedBytes: outcome.fetchedBytes,
        md5: outcome.md5,
      };
    },
    call.signal,
  );
}

/** Runs `use` on a verified regular file (openLocalImport), closing it after. */
async function fromFile<T>(
  real: string,
  name: string,
  what: string,
  use: (source: ReturnType<typeof fileSource>) => Promise<T>,
): Promise<T> {
  const { fh, size } = await openLocalImport(real, what);
  try {
    return await use(fileSource(fh, size, name));
  } finally {
    await fh.close();
  }
}

/**
 * A file another agent offers: pulled over the data path (Receive verifies its SHA-256 end to end)
 * into a staging file beside the destination, used by `use` (read, or renamed into place), and
 * removed whatever happens.
 */
async function fromRemote<T>(
  agent: AgentContext,
  remote: RemoteImportSource,
  destination: string,
  local: string,
  call: CallContext,
  use: (staging: string) => Promise<T>,
): Promise<T> {
  const name = tempName(basename(local));
  const staging = join(dirname(local), name);
  try {
    await agent.dataPath.receive(
      {
        ticket: remote.ticket,
        dataAddress: remote.dataAddress,
        sourceName: remote.sourceName,
        destination: posix.join(posix.dirname(destination), name),
        sparse: true,
      },
      call.signal,
      call.progress,
    );
    const fh = await open(staging, 'r');
    const isFile = (await fh.stat()).isFile();
    await fh.close();
    if (!isFile)
      throw new StorageError(
        'INVALID_ARGUMENT',
        `import image from ${remote.sourceName}: the ticket names a directory, not an image file`,
      );
    return await use(staging);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
