import type { ImportImageRequest } from '../../../../proto/gen/onestorage/agent/v1/agent.js';
import { isBackupUrl } from '../../../../common/src/backups/backup-url.js';
import { MIB } from '../../../../common/src/units.js';
import type { ActionContext } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { dirname } from '../host-path.js';
import { withMadeDirectories } from '../made-directories.js';
import { DS_IMAGE_ARGS } from '../oned-signatures.js';
import { cpFromBackup } from './cp-from-backup.js';
import { need } from './image-action-data.js';
import { aboutImage, basePathOf, formatText, imageHost, readImageCall } from './image-call.js';
import { classifyImportPath, type ImportPath } from './import-path.js';
import { importOptions } from './import-options.js';
import {
  checkImportPath,
  importDirRules,
  localImportSource,
  type ImportDirRules,
} from './restricted-dirs.js';
import { imageSourceName } from './image-source-name.js';

/**
 * Image datastore `cp` (docs/image-datastore.md#cp): registers IMAGE/PATH as a new image
 * `BASE_PATH/<hash>` on the datastore's host. A URL is downloaded by that host's agent; a file on
 * the front-end is read there directly, or offered by the front-end's agent to the landing agent
 * over the data path. Prints `<SOURCE> <format>`.
 */
export const cpImage = defineAction(
  {
    signature: DS_IMAGE_ARGS,
    does: 'registers an image from IMAGE/PATH (an http(s) URL, downloaded where the image lands, a front-end file within SAFE_DIRS/RESTRICTED_DIRS, or a grpc_backup:// restore point merged on the backup server) and prints `SOURCE format`',
  },
  async (ctx, args) => {
    const id = args.image_id;
    const data = readImageCall(ctx, id);
    const path = need(data, 'IMAGE/PATH', data.image.path);
    if (isBackupUrl(path)) return cpFromBackup(ctx, data, id, path);
    const from = classifyImportPath(path, data.owner);
    const options = importOptions(data);
    const rules = importDirRules(ctx.config.imageDatastore.implicitRestrictedDirs, data.datastore);
    if (from.kind === 'local') checkImportPath(from.path, rules, data.owner, data.datastore.id);
    const source = imageSourceName(basePathOf(data), id, Date.now(), data.owner);
    const host = await imageHost(ctx, data, id);
    ctx.info(
      from.kind === 'url'
        ? `Downloading image ${from.shown} to the image repository`
        : `Copying local image ${from.shown} to the image repository`,
    );
    const started = performance.now();
    const r = await aboutImage(data.owner, () =>
      withMadeDirectories(ctx, async (dirs) => {
        // As fs's `mkdir -p BASE_PATH`; taken away again when the import fails.
        await dirs.make({ host, path: dirname(source) });
        return ctx.ops.call(host, 'importImage', {
          destination: source,
          ...(await importSource(ctx, from, host, rules)),
          ...options,
          label: data.owner,
        });
      }),
    );
    const format = formatText(r.format, data.owner, host);
    const seconds = Math.max((performance.now() - started) / 1000, 0.001);
    ctx.info(
      `cp: image ${id} registered at ${host}:${source} as ${format}: ${(r.fetchedBytes / MIB).toFixed(1)} MiB fetched in ${seconds.toFixed(2)} s`,
    );
    return { stdout: `${source} ${format}\n` };
  },
);

/**
 * Where the landing agent takes the bytes from: the URL itself (the download happens there, never
 * through the front-end); a front-end file directly when it lands on the front-end, else through
 * the front-end agent's single-use offer bound to the landing agent's certificate.
 */
async function importSource(
  ctx: ActionContext,
  from: ImportPath,
  host: string,
  rules: ImportDirRules,
): Promise<Pick<ImportImageRequest, 'url' | 'local' | 'remote'>> {
  if (from.kind === 'url') return { url: from.url };
  const local = localImportSource(from.path, rules);
  const frontend = ctx.agents.frontend;
  if (host === frontend) return { local };
  const offer = await ctx.ops.call(frontend, 'openImportSource', {
    source: local,
    receiverName: ctx.agents.get(host).agent.certName,
    ttlSeconds: 0,
  });
  return {
    remote: {
      ticket: offer.ticket,
      dataAddress: offer.dataAddress,
      sourceName: ctx.agents.get(frontend).agent.certName,
    },
  };
}
