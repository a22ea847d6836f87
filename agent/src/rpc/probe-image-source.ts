import type {
  ProbeImageSourceRequest,
  ProbeImageSourceResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { shownUrl } from '../../../common/src/shown-url.js';
import { fileSource } from '../import/file-source.js';
import { openLocalImport, resolveLocalImport } from '../import/local-source.js';
import { probeSource } from '../import/probe-source.js';
import { urlSource } from '../import/url-source.js';
import { type AgentContext, type CallContext } from './context.js';
import { importSourceField } from './import-source-field.js';

/**
 * ProbeImageSource (datastore stat): what ImportImage would register from a URL or a local upload,
 * measured from its first bytes (import/probe-source.ts). Local paths follow the import rules.
 * Read-only: a repeat gives the same answer while the source is unchanged.
 */
export async function probeImageSource(
  agent: AgentContext,
  req: ProbeImageSourceRequest,
  call: CallContext,
): Promise<ProbeImageSourceResponse> {
  const method = 'probe image source';
  const field = importSourceField(agent, method, { url: req.url, local: req.local });
  const label = req.label || 'image';
  const opts = { noDecompress: req.noDecompress, signal: call.signal };
  if (field.kind === 'url') {
    const what = `stat ${label} at ${shownUrl(field.url)}`;
    const probed = await probeSource(urlSource(field.url, { ca: agent.imports.ca, what }), {
      ...opts,
      local: false,
      what,
    });
    call.log.info({ url: shownUrl(field.url), ...probed }, 'image source probed');
    return probed;
  }
  const local = field.kind === 'local' ? field.local : undefined;
  const path = local?.path ?? '';
  const what = `stat ${label} at ${agent.name}:${path}`;
  const real = await resolveLocalImport(
    { path, safeDirs: local?.safeDirs ?? [], restrictedDirs: local?.restrictedDirs ?? [] },
    agent.imports.dirs,
    what,
  );
  const { fh, size } = await openLocalImport(real, what);
  try {
    const probed = await probeSource(fileSource(fh, size, `${agent.name}:${real}`), {
      ...opts,
      local: true,
      what,
    });
    call.log.info({ path, real, ...probed }, 'image source probed');
    return probed;
  } finally {
    await fh.close();
  }
}
