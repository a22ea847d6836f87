import { StorageError } from '../../../common/src/errors.js';
import { redactUrlSecrets, shownUrl } from '../../../common/src/shown-url.js';
import type { LocalImportSource, RemoteImportSource } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { AgentContext } from './context.js';

/** The one source an ImportImage or ProbeImageSource request names, checked. */
export type ImportSourceField =
  | { kind: 'url'; url: URL }
  | { kind: 'local'; local: LocalImportSource }
  | { kind: 'remote'; remote: RemoteImportSource };

/** Schemes an image can be fetched with; OpenNebula's others (ssh, s3, lxd, rbd...) are not ours. */
const URL_SCHEMES = new Set(['http:', 'https:']);

/**
 * The request's `source` oneof: exactly one of url, local (and remote where allowed). A url must
 * parse and be http or https (INVALID_ARGUMENT naming the scheme otherwise); a local path must be
 * set. Every value is data: nothing here reaches a shell.
 */
export function importSourceField(
  agent: AgentContext,
  method: string,
  req: {
    url?: string | undefined;
    local?: LocalImportSource | undefined;
    remote?: RemoteImportSource | undefined;
  },
): ImportSourceField {
  const given = [req.url !== undefined, req.local !== undefined, req.remote !== undefined].filter(
    Boolean,
  ).length;
  const fail = (why: string): never => {
    throw new StorageError('INVALID_ARGUMENT', `${method} on ${agent.name}: ${why}`);
  };
  if (given !== 1) fail(`exactly one source is required (url, local${'remote' in req ? ' or remote' : ''})`);
  if (req.url !== undefined) {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      return fail(`url ${JSON.stringify(redactUrlSecrets(req.url))} is not a URL`);
    }
    if (!URL_SCHEMES.has(url.protocol))
      fail(
        `url scheme "${url.protocol.replace(/:$/, '')}" is not supported (only http and https): ${shownUrl(url)}`,
      );
    return { kind: 'url', url };
  }
  if (req.local !== undefined) {
    if (req.local.path === '') fail('local.path is required');
    return { kind: 'local', local: req.local };
  }
  const remote = req.remote as RemoteImportSource;
  if (remote.ticket === '' || remote.dataAddress === '' || remote.sourceName === '')
    fail('remote.ticket, remote.data_address and remote.source_name are required');
  return { kind: 'remote', remote };
}
