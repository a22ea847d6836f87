import { StorageError } from '../../../../common/src/errors.js';
import { NO_OUTPUT } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { basename, cleanPath, dirname } from '../host-path.js';
import { DS_IMAGE_ARGS } from '../oned-signatures.js';
import { need } from './image-action-data.js';
import { aboutImage, basePathOf, imageHost, readImageCall } from './image-call.js';

/** What an image leaves beside itself: its persistent snapshots and the ssh TM's checksum cache. */
const COMPANIONS = ['', '.snap', '.md5sum'] as const;

/**
 * Image datastore `rm` (docs/image-datastore.md#rm): deletes SOURCE, `SOURCE.snap` and
 * `SOURCE.md5sum` where the image lives. SOURCE must lie directly in BASE_PATH (compared as cleaned
 * paths: `BASE//x` and a BASE_PATH with a trailing slash are the same place). What is already gone
 * counts as deleted, so oned never needs FORCE_DELETE for an image whose file vanished.
 */
export const rmImage = defineAction(
  {
    signature: DS_IMAGE_ARGS,
    does: "deletes the image's SOURCE, SOURCE.snap and SOURCE.md5sum (already gone is success); SOURCE must lie in BASE_PATH",
  },
  async (ctx, args) => {
    const id = args.image_id;
    const data = readImageCall(ctx, id);
    const given = need(data, 'IMAGE/SOURCE', data.image.source);
    const base = basePathOf(data);
    const source = cleanPath(given);
    const name = basename(source);
    if (!source.startsWith('/') || dirname(source) !== base || name === '' || name === '.' || name === '..') {
      throw new StorageError(
        'UNSAFE_PATH',
        `${data.owner}: SOURCE ${JSON.stringify(given)} does not lie directly in the datastore's BASE_PATH ${base}: refusing to delete it`,
      );
    }
    const host = await imageHost(ctx, data, id);
    ctx.info(`Removing ${source} from the image repository`);
    const existed: string[] = [];
    await aboutImage(data.owner, async () => {
      for (const suffix of COMPANIONS) {
        const r = await ctx.ops.call(host, 'delete', { path: `${source}${suffix}` });
        if (r.existed) existed.push(`${source}${suffix}`);
      }
    });
    ctx.info(
      existed.length === 0
        ? `rm: image ${id}: ${host}:${source} was already gone`
        : `rm: image ${id}: deleted ${existed.map((p) => `${host}:${p}`).join(', ')}`,
    );
    return NO_OUTPUT;
  },
);
