import { StorageError } from '../../../../common/src/errors.js';
import { MIB } from '../../../../common/src/units.js';
import { isBackupUrl } from '../../../../common/src/backups/backup-url.js';
import { defineAction } from '../define-action.js';
import { restoredSizeMb } from '../ds-backup/restored-size.js';
import { DS_STAT_ARGS } from '../oned-signatures.js';
import { need, parseImageActionData } from './image-action-data.js';
import { classifyImportPath } from './import-path.js';
import { importOptions } from './import-options.js';
import { checkImportPath, importDirRules, localImportSource } from './restricted-dirs.js';

/**
 * Image datastore `stat` (docs/image-datastore.md#stat): the size in MiB an image registered from
 * IMAGE/PATH will have (a qcow2's virtual size, a raw file's bytes), measured by the front-end's
 * agent before oned allocates the image, as fs measures on the front-end. Local paths obey
 * SAFE_DIRS and RESTRICTED_DIRS here already (fs checks them only at cp); an empty image is refused.
 */
export const statImage = defineAction(
  {
    signature: DS_STAT_ARGS,
    does: 'prints the size in MiB of what cp would register from IMAGE/PATH (qcow2: virtual size), measured on the front-end',
  },
  async (ctx, args) => {
    const data = parseImageActionData(ctx.stdin, `stat request ${args.request_id}`);
    const path = need(data, 'IMAGE/PATH', data.image.path);
    // A disk of a backup being restored (docs/backups.md#pseudo-urls): its size once restored.
    if (isBackupUrl(path)) return { stdout: `${await restoredSizeMb(ctx, path, data.owner)}\n` };
    const from = classifyImportPath(path, data.owner);
    const rules = importDirRules(ctx.config.imageDatastore.implicitRestrictedDirs, data.datastore);
    if (from.kind === 'local') checkImportPath(from.path, rules, data.owner, data.datastore.id);
    const host = ctx.agents.frontend;
    // The agent's errors name the path or URL and the host (`stat image at frontend:/var/tmp/x: ...`).
    const r = await ctx.ops.call(host, 'probeImageSource', {
      ...(from.kind === 'url' ? { url: from.url } : { local: localImportSource(from.path, rules) }),
      noDecompress: importOptions(data).noDecompress,
      label: 'image',
    });
    if (r.sizeBytes <= 0) {
      throw new StorageError(
        'BAD_IMAGE',
        `${data.owner}: ${from.shown} on ${host} is empty: an image of 0 bytes cannot be registered`,
      );
    }
    ctx.logger.info(
      { path: from.shown, bytes: r.sizeBytes, format: r.format, compression: r.compression },
      'measured',
    );
    return { stdout: `${Math.ceil(r.sizeBytes / MIB)}\n` };
  },
);
