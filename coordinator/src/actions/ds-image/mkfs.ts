import { StorageError } from '../../../../common/src/errors.js';
import { FILESYSTEMS, type Filesystem } from '../../../../common/src/images/filesystems.js';
import { defineAction } from '../define-action.js';
import { imageFormat } from '../disk-facts.js';
import { DS_IMAGE_ARGS } from '../oned-signatures.js';
import { ACTION_DATA_ROOT } from './ds-driver-action.js';
import { need, type ImageActionData } from './image-action-data.js';
import { aboutImage, basePathOf, imageHost, readImageCall } from './image-call.js';
import { imageSourceName } from './image-source-name.js';

/** FORMAT oned sends for a save-as: only a name is wanted; the TM's cpds writes the file later. */
const SAVE_AS = 'save_as';
/** FORMAT of a swap image: a raw image with mkswap's header (fs appends mkswap). */
const SWAP = 'swap';

/**
 * Image datastore `mkfs` (docs/image-datastore.md#mkfs): a new empty image of IMAGE/SIZE MiB,
 * raw or qcow2, formatted with IMAGE/FS when set (an allow-list: the value is data, never part of
 * a command), or a swap area; for a save-as, only the name. Prints `<SOURCE>`.
 */
export const mkfsImage = defineAction(
  {
    signature: DS_IMAGE_ARGS,
    does: 'makes an empty image (raw, qcow2 or swap; IMAGE/FS formats it) or, for a save-as, only names it; prints SOURCE',
  },
  async (ctx, args) => {
    const id = args.image_id;
    const data = readImageCall(ctx, id);
    const format = need(data, 'IMAGE/FORMAT', data.image.format).toLowerCase();
    const source = imageSourceName(basePathOf(data), id, Date.now(), data.owner);
    if (format === SAVE_AS) return { stdout: `${source}\n` };
    if (format !== 'raw' && format !== 'qcow2' && format !== SWAP) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `${data.owner}: /${ACTION_DATA_ROOT}/IMAGE/FORMAT ${JSON.stringify(data.image.format)} is not one mkfs makes (raw, qcow2, swap, save_as)`,
      );
    }
    const filesystem = filesystemOf(data);
    const sizeMb = need(data, 'IMAGE/SIZE', data.image.sizeMb);
    if (sizeMb <= 0) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `${data.owner}: /${ACTION_DATA_ROOT}/IMAGE/SIZE must be positive, got ${sizeMb}`,
      );
    }
    const host = await imageHost(ctx, data, id);
    await aboutImage(data.owner, () =>
      ctx.ops.call(host, 'createImage', {
        path: source,
        sizeMb,
        // A swap area is a raw image (docs/opennebula/tm-actions.md#mkimage).
        format: imageFormat(format === SWAP ? 'raw' : format),
        swap: format === SWAP,
        // mkswap overwrites any filesystem, as in fs (which runs mkfs, then mkswap).
        filesystem: format === SWAP ? '' : (filesystem ?? ''),
        filesystemOptions: '',
        sparse: true,
      }),
    );
    ctx.info(
      `mkfs: made ${format}${filesystem && format !== SWAP ? ` (${filesystem})` : ''} ${sizeMb} MiB at ${host}:${source}`,
    );
    return { stdout: `${source}\n` };
  },
);

/** IMAGE/FS when set, checked against the allow-list before anything runs. */
function filesystemOf(data: ImageActionData): Filesystem | undefined {
  const fs = data.image.fs;
  if (fs === undefined) return undefined;
  if (!(FILESYSTEMS as readonly string[]).includes(fs)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${data.owner}: /${ACTION_DATA_ROOT}/IMAGE/FS ${JSON.stringify(fs.slice(0, 60))} is not a supported filesystem (${FILESYSTEMS.join(', ')})`,
    );
  }
  return fs as Filesystem;
}
