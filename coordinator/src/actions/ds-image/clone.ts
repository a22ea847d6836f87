import { StorageError } from '../../../../common/src/errors.js';
import { tempName } from '../../../../common/src/files/temp-name.js';
import type { ActionContext } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { imageFormat } from '../disk-facts.js';
import { basename, cleanPath, dirname } from '../host-path.js';
import { DS_IMAGE_ARGS } from '../oned-signatures.js';
import { transfer } from '../transfer.js';
import { datastoreHost } from './datastore-host.js';
import { ACTION_DATA_ROOT } from './ds-driver-action.js';
import { need, type ImageActionData } from './image-action-data.js';
import { aboutImage, basePathOf, formatAt, imageHost, readImageCall } from './image-call.js';
import { imageSourceName } from './image-source-name.js';

/**
 * Image datastore `clone` (docs/image-datastore.md#clone): a standalone copy of the image whose
 * SOURCE oned passes as IMAGE/PATH, as a new image of this datastore, in DRIVER's format when that
 * is raw or qcow2, else in the source's. One agent: a convert (which flattens a chain, and follows
 * a SOURCE linked into its `.snap`). Two: the source's agent converts into a temporary beside the
 * source, the target's agent pulls it over the data path, and the temporary goes. Prints
 * `<SOURCE> <format>`.
 */
export const cloneImage = defineAction(
  {
    signature: DS_IMAGE_ARGS,
    does: 'copies the image at IMAGE/PATH (another image SOURCE, flattened) into a new image of this datastore; prints `SOURCE format`',
  },
  async (ctx, args) => {
    const id = args.image_id;
    const data = readImageCall(ctx, id);
    const base = basePathOf(data);
    const from = cleanPath(need(data, 'IMAGE/PATH', data.image.path));
    if (!from.startsWith('/')) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `${data.owner}: /${ACTION_DATA_ROOT}/IMAGE/PATH ${JSON.stringify(data.image.path)} is not an absolute path (the source image's SOURCE)`,
      );
    }
    const sourceFormat = formatAt(data, 'IMAGE/FORMAT', data.image.format);
    const driver = data.datastore.driver?.toLowerCase();
    const format = driver === 'raw' || driver === 'qcow2' ? driver : sourceFormat;
    const source = imageSourceName(base, id, Date.now(), data.owner);
    const to = await imageHost(ctx, data, id);
    const at = await sourceHost(ctx, data, id, dirname(from) === base ? to : undefined);
    const convert = {
      format: imageFormat(format),
      sourceFormat: imageFormat(sourceFormat),
      sparse: true,
      snapshot: undefined,
      // An image used in place by the qcow2/shared TM holds its current state in its snap dir.
      imageCurrentState: true,
    };
    ctx.info(`Copying image ${at}:${from} to ${to}:${source}`);
    await aboutImage(data.owner, async () => {
      if (at === to) {
        await ctx.ops.call(to, 'convert', { source: from, destination: source, ...convert });
        return;
      }
      // Named as the sending agent's own temporary: its stale-temps sweep removes one that a crash
      // left behind (docs/security.md#the-data-path-and-symlinks).
      const temp = `${dirname(from)}/${tempName(basename(from), 'tmp', ctx.agents.get(at).agent.name)}`;
      try {
        await ctx.ops.call(at, 'convert', { source: from, destination: temp, ...convert });
        await transfer(ctx, { host: at, path: temp }, { host: to, path: source }, { sparse: true });
      } finally {
        await ctx.ops.callDetached(at, 'delete', { path: temp }).catch((err: unknown) => {
          ctx.logger.warn({ err, host: at, path: temp }, 'clone: could not delete its temporary copy');
        });
      }
    });
    return { stdout: `${source} ${format}\n` };
  },
);

/**
 * Where the image to copy lives: on the source datastore's SOURCE_BRIDGE_LIST host (oned sends the
 * list for a clone across datastores whose source has one), else on this datastore's host when the
 * source lies in this datastore (`sameDatastoreHost`), else on the front-end.
 */
function sourceHost(
  ctx: ActionContext,
  data: ImageActionData,
  id: number,
  sameDatastoreHost: string | undefined,
): Promise<string> {
  if (data.sourceBridgeList.length > 0) {
    return datastoreHost(ctx, {
      bridgeList: data.sourceBridgeList,
      id,
      owner: data.owner,
      list: 'SOURCE_BRIDGE_LIST',
    });
  }
  return Promise.resolve(sameDatastoreHost ?? ctx.agents.frontend);
}
