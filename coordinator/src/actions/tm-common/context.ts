import { StorageError } from '../../../../common/src/errors.js';
import { NO_OUTPUT } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { basename, cleanPath, dirname } from '../host-path.js';
import { CONTEXT_ARGS } from '../oned-signatures.js';
import { transfer } from '../transfer.js';
import { checkPath, requireExisting } from '../preflight.js';
import { enableLocalMonitoring } from './monitoring-marker.js';
import { MadeDirectories } from '../made-directories.js';
import { MIB } from '../../../../common/src/units.js';

/** The volume label the guest's context scripts look for. */
const CONTEXT_LABEL = 'CONTEXT';
/** Context files are scripts and keys; a download larger than this is not a context file. */
const MAX_DOWNLOAD_BYTES = 16 * MIB;
const DOWNLOAD_TIMEOUT_MS = 60_000;
const URL_PATTERN = /^https?:\/\//;
const ISO_NAME = /^[A-Za-z0-9._+-]{1,255}$/;

interface IsoEntry {
  name: string;
  source?: string;
  content?: Buffer;
}

/**
 * context (tm/common, docs/opennebula/tm-actions.md#context): an ISO labelled CONTEXT holding context.sh and the listed
 * files (`file:name` renames; http(s) sources are downloaded) becomes disk.i on the host. The
 * front-end agent builds it in `<datastore>/.isofiles/` from the files it can read (context.sh in
 * oned's VM directory, FILES in file datastores), then it moves to the host like any disk.
 */
export const contextLocal = defineAction(
  {
    signature: CONTEXT_ARGS,
    does: 'makes the CONTEXT ISO (context.sh and the files, `file:name` renames, http(s) sources downloaded) and moves it to the host',
  },
  async (ctx, { files, destination, vm_id: vmId, ds_id: dsId }) => {
    const entries: IsoEntry[] = [];
    for (const spec of files) entries.push(await isoEntry(spec));

    const fe = ctx.agents.frontend;
    // Every file and the destination are checked before the staging directory exists (preflight.ts).
    for (const e of entries)
      if (e.source !== undefined) await requireExisting(ctx, { host: fe, path: e.source }, 'context file');
    await checkPath(ctx, destination);
    const staging = `${cleanPath(ctx.config.datastoreLocation)}/${dsId}/.isofiles/${vmId}`;
    const iso = { host: fe, path: `${staging}/${basename(destination.path)}.iso` };
    // What this call makes (the staging directory and its parents, the VM directory) goes again when
    // a step fails; the staging directory itself goes in any case.
    const dirs = new MadeDirectories(ctx);
    const vmDir = dirname(destination.path);
    try {
      await dirs.make({ host: fe, path: staging });
      await ctx.ops.call(fe, 'buildIso', {
        path: iso.path,
        label: CONTEXT_LABEL,
        files: entries.map((e) =>
          e.content ? { name: e.name, content: e.content } : { name: e.name, source: e.source ?? '' },
        ),
      });
      await dirs.make({ host: destination.host, path: vmDir });
      await transfer(ctx, iso, destination, { sparse: true });
    } catch (err) {
      await ctx.ops.callDetached(fe, 'delete', { path: staging }).catch((e: unknown) => {
        ctx.logger.warn({ err: e, path: staging }, 'could not remove the context staging directory');
      });
      await dirs.undo();
      throw err;
    }
    await ctx.ops.call(fe, 'delete', { path: staging });
    await enableLocalMonitoring(ctx, { host: destination.host, path: dirname(vmDir) });
    return NO_OUTPUT;
  },
);

/** `path`, `path:name` or an http(s) URL, as oned writes the CONTEXT line. */
async function isoEntry(spec: string): Promise<IsoEntry> {
  if (URL_PATTERN.test(spec)) {
    const name = basename(new URL(spec).pathname) || 'index.html';
    return { name: checkName(name, spec), content: await download(spec) };
  }
  const colon = spec.indexOf(':');
  const source = colon >= 0 ? spec.slice(0, colon) : spec;
  const name = colon >= 0 ? spec.slice(colon + 1) : basename(source);
  if (!source.startsWith('/'))
    throw new StorageError(
      'INVALID_ARGUMENT',
      `context file "${spec}" is not an absolute path or an http(s) URL`,
    );
  return { name: checkName(name, spec), source: cleanPath(source) };
}

function checkName(name: string, spec: string): string {
  if (!ISO_NAME.test(name) || name === '.' || name === '..') {
    throw new StorageError('INVALID_ARGUMENT', `context file "${spec}": "${name}" is not a plain file name`);
  }
  return name;
}

async function download(url: string): Promise<Buffer> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS), redirect: 'follow' });
  } catch (err) {
    throw new StorageError(
      'NOT_FOUND',
      `context file ${url} cannot be downloaded: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (!response.ok)
    throw new StorageError('NOT_FOUND', `context file ${url} cannot be downloaded: HTTP ${response.status}`);
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > MAX_DOWNLOAD_BYTES) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `context file ${url} is ${declared} bytes, over the ${MAX_DOWNLOAD_BYTES}-byte limit`,
    );
  }
  const body = Buffer.from(await response.arrayBuffer());
  if (body.length > MAX_DOWNLOAD_BYTES) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `context file ${url} is over the ${MAX_DOWNLOAD_BYTES}-byte limit`,
    );
  }
  return body;
}
