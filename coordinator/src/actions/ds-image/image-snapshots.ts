import { StorageError } from '../../../../common/src/errors.js';
import { NO_OUTPUT, type ActionHandler } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { imageFormat } from '../disk-facts.js';
import { cleanPath } from '../host-path.js';
import { DS_IMAGE_ARGS } from '../oned-signatures.js';
import { ACTION_DATA_ROOT } from './ds-driver-action.js';
import { need } from './image-action-data.js';
import { aboutImage, formatAt, imageHost, readImageCall } from './image-call.js';

type SnapshotRpc = 'imageSnapshotDelete' | 'imageSnapshotRevert' | 'imageSnapshotFlatten';

/**
 * snap_delete, snap_revert, snap_flatten of a persistent image (docs/image-datastore.md#snap_delete-snap_revert-snap_flatten):
 * the agent holding the image works on `<SOURCE>.snap/<TARGET_SNAPSHOT>` whatever layout the TM
 * left there (docs/image-datastore.md#snapshots-of-persistent-images). Prints nothing.
 */
function imageSnapshotAction(rpc: SnapshotRpc, verb: string, does: string): ActionHandler {
  return defineAction({ signature: DS_IMAGE_ARGS, does }, async (ctx, args) => {
    const id = args.image_id;
    const data = readImageCall(ctx, id);
    const source = cleanPath(need(data, 'IMAGE/SOURCE', data.image.source));
    const format = formatAt(data, 'IMAGE/FORMAT', data.image.format);
    const snapId = need(data, 'IMAGE/TARGET_SNAPSHOT', data.image.targetSnapshot);
    if (snapId < 0) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `${data.owner}: /${ACTION_DATA_ROOT}/IMAGE/TARGET_SNAPSHOT is ${snapId}: no snapshot is targeted`,
      );
    }
    const host = await imageHost(ctx, data, id);
    const r = await aboutImage(data.owner, () =>
      ctx.ops.call(host, rpc, { source, format: imageFormat(format), snapId }),
    );
    ctx.info(
      `${ctx.action}: image ${id}: ${r.changed ? verb : `already ${verb}`} snapshot ${snapId} of ${host}:${source}`,
    );
    return NO_OUTPUT;
  });
}

export const snapDeleteImage = imageSnapshotAction(
  'imageSnapshotDelete',
  'deleted',
  'deletes snapshot TARGET_SNAPSHOT of a persistent image (already gone is success)',
);

export const snapRevertImage = imageSnapshotAction(
  'imageSnapshotRevert',
  'reverted to',
  "makes snapshot TARGET_SNAPSHOT the persistent image's current state, keeping the snapshots",
);

export const snapFlattenImage = imageSnapshotAction(
  'imageSnapshotFlatten',
  'flattened to',
  'replaces the persistent image with a standalone copy of snapshot TARGET_SNAPSHOT and drops all snapshots',
);
