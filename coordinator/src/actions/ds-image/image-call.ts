import { StorageError } from '../../../../common/src/errors.js';
import { ImageFormat } from '../../../../proto/gen/onestorage/agent/v1/agent.js';
import type { ActionContext } from '../action-context.js';
import { cleanPath } from '../host-path.js';
import { datastoreHost } from './datastore-host.js';
import { ACTION_DATA_ROOT } from './ds-driver-action.js';
import { need, parseImageActionData, type ImageActionData } from './image-action-data.js';

// What every action on one image of the datastore shares: reading the call, BASE_PATH, the host the
// image lives on, its format, and errors that name the image.

/** The call's DS_DRIVER_ACTION_DATA, for the image oned named in the argument. */
export function readImageCall(ctx: ActionContext, imageId: number): ImageActionData {
  const owner = `image ${imageId}`;
  if (imageId < 0)
    throw new StorageError('INVALID_ARGUMENT', `argument image_id ${imageId} is not an image id`);
  return parseImageActionData(ctx.stdin, owner, { imageId });
}

/** DATASTORE/BASE_PATH, cleaned; it must be absolute. */
export function basePathOf(data: ImageActionData): string {
  const base = need(data, 'DATASTORE/BASE_PATH', data.datastore.basePath);
  if (!base.startsWith('/')) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${data.owner}: /${ACTION_DATA_ROOT}/DATASTORE/BASE_PATH ${JSON.stringify(base)} is not an absolute path`,
    );
  }
  return cleanPath(base);
}

/** The agent holding (or receiving) the datastore's images: docs/image-datastore.md#where-an-image-lives. */
export function imageHost(ctx: ActionContext, data: ImageActionData, id: number): Promise<string> {
  return datastoreHost(ctx, {
    bridgeList: data.datastore.bridgeList,
    id,
    owner: data.owner,
    list: `BRIDGE_LIST of datastore ${data.datastore.id}`,
  });
}

/** A format oned recorded (IMAGE/FORMAT, DRIVER): raw or qcow2, anything else refused naming it. */
export function formatAt(data: ImageActionData, xpath: string, value: string | undefined): 'raw' | 'qcow2' {
  const format = need(data, xpath, value).toLowerCase();
  if (format !== 'raw' && format !== 'qcow2') {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${data.owner}: /${ACTION_DATA_ROOT}/${xpath} ${JSON.stringify(value)} is not a format the grpc datastore keeps (raw, qcow2)`,
    );
  }
  return format;
}

/** What an agent reports as an image's format, as `cp`/`clone`/`export` print it. */
export function formatText(format: ImageFormat, owner: string, host: string): 'raw' | 'qcow2' {
  if (format === ImageFormat.IMAGE_FORMAT_RAW) return 'raw';
  if (format === ImageFormat.IMAGE_FORMAT_QCOW2) return 'qcow2';
  throw new StorageError('INTERNAL', `${owner}: agent ${host} reported no image format (${format})`);
}

/**
 * Runs agent calls about one image: a StorageError that comes out names the image (oned's line
 * reads `cp failed: image 7: <what the agent said>`, unless the agent's message names it already),
 * keeping its reason.
 */
export async function aboutImage<T>(owner: string, work: () => Promise<T>): Promise<T> {
  const named = new RegExp(`(^|\\W)${owner.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\W|$)`);
  try {
    return await work();
  } catch (err) {
    if (err instanceof StorageError && !named.test(err.message)) {
      throw new StorageError(err.reason, `${owner}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}
