/**
 * The oned objects a backup restore creates (docs/backups.md#ownership-and-undo): images and a VM
 * template, allocated with the coordinator's own oned session and then given to the restoring user
 * (chown), and every one of them deleted again when a later step fails, so a retry starts clean.
 */
import { StorageError, oneLine } from '../../../../common/src/errors.js';
import type { ActionContext } from '../action-context.js';

export interface Owner {
  uid: number;
  gid: number;
  name: string;
}

/** The objects made so far, in the order they were made. */
export class RestoredObjects {
  readonly images: number[] = [];
  template: number | undefined;

  constructor(
    private readonly ctx: ActionContext,
    private readonly owner: Owner | undefined,
  ) {}

  /** Allocates one image in `dsId` and gives it to the owner. */
  async image(template: string, dsId: number): Promise<number> {
    const id = await onedCall(() => this.ctx.oned.allocateImage(template, dsId));
    this.images.push(id);
    if (this.owner) {
      const { uid, gid } = this.owner;
      await onedCall(() => this.ctx.oned.chownImage(id, uid, gid));
    }
    return id;
  }

  /** Allocates the VM template and gives it to the owner. */
  async vmTemplate(template: string): Promise<number> {
    const id = await onedCall(() => this.ctx.oned.allocateTemplate(template));
    this.template = id;
    if (this.owner) {
      const { uid, gid } = this.owner;
      await onedCall(() => this.ctx.oned.chownTemplate(id, uid, gid));
    }
    return id;
  }

  /**
   * Deletes what was made (template first, then the images, newest first) and returns what to add
   * to the error: what was undone, and what could not be (for an operator to delete by hand).
   * An image whose datastore cp is still running is deleted with force.
   */
  async undo(): Promise<string> {
    const failed: string[] = [];
    const deleted: string[] = [];
    if (this.template !== undefined) {
      const id = this.template;
      await this.ctx.oned.deleteTemplate(id).then(
        () => deleted.push(`template ${id}`),
        (err: unknown) => failed.push(`template ${id} (${message(err)})`),
      );
    }
    for (const id of [...this.images].reverse()) {
      await this.ctx.oned.deleteImage(id, true).then(
        () => deleted.push(`image ${id}`),
        (err: unknown) => failed.push(`image ${id} (${message(err)})`),
      );
    }
    if (deleted.length + failed.length === 0) return 'nothing was created';
    const parts = [];
    if (deleted.length > 0) parts.push(`deleted ${deleted.join(', ')}`);
    if (failed.length > 0) parts.push(`could not delete ${failed.join(', ')}: delete them by hand`);
    return parts.join('; ');
  }
}

/** The restoring user as oned knows it; one line when oned has no such user. */
export async function restoreOwner(
  ctx: ActionContext,
  username: string | undefined,
  owner: string,
): Promise<Owner | undefined> {
  if (username === undefined) return undefined;
  const user = await onedCall(() => ctx.oned.userByName(username));
  if (user === undefined) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${owner}: TEMPLATE/USERNAME ${JSON.stringify(username)} is no oned user`,
    );
  }
  return { uid: user.id, gid: user.gid, name: username };
}

/** oned's refusals and outages as ONED_FAILED, in oned's own words. */
async function onedCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw new StorageError('ONED_FAILED', message(err), { cause: err });
  }
}

function message(err: unknown): string {
  return oneLine(err instanceof Error ? err.message : String(err));
}
