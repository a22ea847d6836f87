import { StorageError } from '../../../../common/src/errors.js';
import { BackingStyle, type ImageFormat } from '../../../../proto/gen/onestorage/agent/v1/agent.js';
import { LcmState } from '../../oned/vm-state.js';
import type { VmInfo } from '../../oned/vm-xml.js';
import { NO_OUTPUT, type ActionContext, type ActionResult } from '../action-context.js';
import type { ParsedArgs } from '../action-args.js';
import { defineAction } from '../define-action.js';
import { imageFormat, snapDirFor } from '../disk-facts.js';
import type { HostPath } from '../host-path.js';
import { SNAPSHOT_ARGS } from '../oned-signatures.js';
import { liveDisk } from '../live-disk.js';
import { fetchVm } from '../vm-lookup.js';

/**
 * New backing names are `disk.N.snap/K`, resolved through the snap dir's self link (the qcow2/shared
 * layout of docs/opennebula/snapshots.md#qcow2-layout), not tm/local's bare `K`: a bare name only resolves when the image is
 * opened from inside the snap dir, and qemu-img, qemu-io and libvirt open `disk.N` from the VM
 * directory. The agents read either style, so directories made by OpenNebula's tm/local keep working.
 */
const LOCAL_BACKING_STYLE = BackingStyle.BACKING_STYLE_RELATIVE;

interface SnapshotCall {
  disk: HostPath;
  /** '' for the default `<disk>.snap`. */
  snapDir: string;
  snapId: number;
  vm: VmInfo;
  diskId: number;
  format: ImageFormat;
}

async function snapshotCall(
  ctx: ActionContext,
  { disk, snapshot_id: snapId, vm_id: vmId }: ParsedArgs<typeof SNAPSHOT_ARGS.args>,
): Promise<SnapshotCall> {
  if (snapId < 0)
    throw new StorageError('INVALID_ARGUMENT', `argument snapshot_id must not be negative, got ${snapId}`);
  const diskId = disk.diskId;
  const vm = await fetchVm(ctx, vmId);
  const name = vm.disk(diskId)?.format ?? 'raw';
  const format = imageFormat(name);
  if (format === undefined) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `VM ${vmId} DISK ${diskId} has FORMAT ${name.toLowerCase()}: snapshots need raw or qcow2`,
    );
  }
  return { disk, snapId, vm, diskId, format, snapDir: snapDirFor(ctx, vm.disk(diskId)) };
}

/** snap_create of a powered-off VM (docs/opennebula/snapshots.md#snap_create): qcow2 overlay chain or a raw full copy. */
export const snapCreate = defineAction(
  {
    signature: SNAPSHOT_ARGS,
    does: "snapshots a powered-off VM's disk: a qcow2 overlay in `disk.N.snap/`, a full copy of a raw disk",
  },
  async (ctx, args) => createSnapshot(ctx, await snapshotCall(ctx, args), false),
);

/**
 * snap_create_live (the VMM driver inserts `_LIVE`, docs/opennebula/driver-protocol.md#calls-from-the-vmm-driver): the agent creates the overlay
 * and switches the running domain onto it (qcow2), or block-copies a raw disk; the guest is held
 * still as BACKUP_CONFIG/FS_FREEZE says.
 */
export const snapCreateLive = defineAction(
  {
    signature: SNAPSHOT_ARGS,
    does: "snapshots a running VM's disk: an external disk-only snapshot (qcow2) or a block copy (raw), the guest held still per FS_FREEZE",
  },
  async (ctx, args) => createSnapshot(ctx, await snapshotCall(ctx, args), true),
);

async function createSnapshot(ctx: ActionContext, c: SnapshotCall, live: boolean): Promise<ActionResult> {
  const r = await ctx.ops.call(c.disk.host, 'snapshotCreate', {
    diskPath: c.disk.path,
    snapId: c.snapId,
    format: c.format,
    snapDir: c.snapDir,
    backingStyle: LOCAL_BACKING_STYLE,
    live: live ? liveDisk(c.vm, c.diskId) : undefined,
  });
  const of = live ? ` of running ${c.vm.deployId}` : '';
  ctx.info(
    `${ctx.action}: snapshot ${c.snapId} of disk ${c.diskId}${of} ${r.created ? 'taken' : 'already there'}`,
  );
  return NO_OUTPUT;
}

/** snap_revert: the disk goes back to snapshot S; the snapshots themselves are kept. */
export const snapRevert = defineAction(
  { signature: SNAPSHOT_ARGS, does: 'takes the disk back to a snapshot, keeping the snapshots' },
  async (ctx, args) => {
    const c = await snapshotCall(ctx, args);
    await ctx.ops.call(c.disk.host, 'snapshotRevert', {
      diskPath: c.disk.path,
      snapId: c.snapId,
      format: c.format,
      snapDir: c.snapDir,
      backingStyle: LOCAL_BACKING_STYLE,
    });
    return NO_OUTPUT;
  },
);

/**
 * snap_delete: the qcow2 algorithm of docs/opennebula/snapshots.md#snap_delete runs on the agent; it needs to know whether the
 * snapshot is the one the disk runs on, which oned records per disk (unlike OpenNebula's lookup,
 * which takes the first disk's SNAPSHOTS block, reference quirk).
 */
export const snapDelete = defineAction(
  {
    signature: SNAPSHOT_ARGS,
    does: 'deletes a snapshot, merging qcow2 layers as OpenNebula does; on a running VM by `virsh blockpull`',
  },
  async (ctx, args) => {
    const c = await snapshotCall(ctx, args);
    const active = c.vm.diskSnapshots(c.diskId)?.snapshots.find((s) => s.id === c.snapId)?.active ?? false;
    const r = await ctx.ops.call(c.disk.host, 'snapshotDelete', {
      diskPath: c.disk.path,
      snapId: c.snapId,
      format: c.format,
      snapDir: c.snapDir,
      backingStyle: LOCAL_BACKING_STYLE,
      active,
      // oned's DISK_SNAPSHOT_DELETE is the running-VM state; the agent also checks the domain runs.
      live: c.vm.lcmState === LcmState.DiskSnapshotDelete ? liveDisk(c.vm, c.diskId) : undefined,
    });
    if (!r.existed) ctx.info(`${ctx.action}: snapshot ${c.snapId} of disk ${c.diskId} was already gone`);
    return NO_OUTPUT;
  },
);
