import { DS_DRIVER_BACKUP } from '../../../../common/src/drivers/driver-actions.js';
import { StorageError } from '../../../../common/src/errors.js';
import { MIB } from '../../../../common/src/units.js';
import { NO_OUTPUT, type ActionContext } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { type BackupServer, backupServerOf } from '../ds-backup/backup-server.js';
import type { HostPath } from '../host-path.js';
import { RESTORE_ARGS } from '../oned-signatures.js';
import { fetchVm } from '../vm-lookup.js';
import {
  type DiskRestore,
  type RestorePoint,
  candidateDisks,
  diskRestore,
  restorePoint,
} from './restore-plan.js';
import { restoreTpmState } from './restore-tpm.js';

/**
 * restore (oned RESTORE, both TM drivers; docs/backups.md#tm-restore): a powered-off VM's disks
 * are replaced by a restore point of one of its backups. The backup server merges each disk's
 * chain and the VM's host pulls the result straight from it into a staging name; only when every
 * disk arrived is each put in place (RestoreDisk, in the TM driver's layout), then the vTPM state.
 */
export const restoreVm = defineAction(
  {
    signature: RESTORE_ARGS,
    does: "replaces a powered-off VM's disks (and vTPM state) with a restore point pulled from the backup server",
  },
  async (ctx, args) => {
    const vmDir = args['host:vm_dir'];
    const vmId = args.vm_id;
    const diskId = args.disk_id;
    const point = await restorePoint(ctx, args.image_id, args.increment_id, vmId);
    const vm = await fetchVm(ctx, vmId);
    const server = await backupServerOf(ctx, point.dsId, DS_DRIVER_BACKUP);
    const last = point.chain[point.chain.length - 1] as RestorePoint['chain'][number];
    const lastDir = `${server.basePath}/${point.image.vmId}/${last.bid}`;
    const what = `restore VM ${vmId} from backup image ${point.imageId} increment ${last.inc}`;
    // The disks the restore point holds (its last increment has a file for each).
    const disks: DiskRestore[] = [];
    for (const d of candidateDisks(vm, diskId)) {
      const st = await ctx.ops.call(server.host, 'stat', {
        path: `${lastDir}/disk.${d.diskId}.${last.inc}`,
        follow: false,
      });
      if (st.exists) disks.push(diskRestore(ctx, vmDir.path, d));
      else if (diskId >= 0)
        throw new StorageError(
          'NOT_FOUND',
          `${what}: the backup holds no disk ${diskId} (${server.host}:${lastDir})`,
        );
    }
    if (disks.length === 0)
      throw new StorageError(
        'NOT_FOUND',
        `${what}: the backup holds none of the VM's disks (${server.host}:${lastDir})`,
      );
    const received: string[] = [];
    try {
      for (const d of disks) {
        await receiveDisk(ctx, server, point, vmDir, d);
        received.push(d.staging);
      }
    } catch (err) {
      // Nothing was replaced yet: the restore points already received go.
      for (const staging of received)
        await ctx.ops.callDetached(vmDir.host, 'delete', { path: staging }).catch(() => undefined);
      throw err;
    }
    for (const [i, d] of disks.entries()) {
      try {
        const r = await ctx.ops.call(vmDir.host, 'restoreDisk', {
          staging: d.staging,
          diskPath: d.diskPath,
          layout: d.layout,
          format: d.format,
          source: d.source,
        });
        const dropped = r.bitmapsRemoved.length > 0 ? `, bitmaps ${r.bitmapsRemoved.join(',')} dropped` : '';
        ctx.info(
          `${ctx.action}: disk ${d.diskId} of VM ${vmId} restored from increment ${last.inc}${dropped}`,
        );
      } catch (err) {
        for (const later of disks.slice(i + 1))
          await ctx.ops.callDetached(vmDir.host, 'delete', { path: later.staging }).catch(() => undefined);
        throw err;
      }
    }
    if (diskId < 0) await restoreTpmState(ctx, server, lastDir, vmDir);
    return NO_OUTPUT;
  },
);

/** One disk's restore point, merged on the backup server, pulled by the VM's host into `staging`. */
async function receiveDisk(
  ctx: ActionContext,
  server: BackupServer,
  point: RestorePoint,
  vmDir: HostPath,
  d: DiskRestore,
): Promise<void> {
  const started = performance.now();
  const base = `${server.basePath}/${point.image.vmId}`;
  const chain = point.chain.map((l) => `${base}/${l.bid}/disk.${d.diskId}.${l.inc}`);
  const open = await ctx.ops.call(server.host, 'openBackupChain', {
    chain,
    receiverName: ctx.agents.get(vmDir.host).agent.certName,
    ttlSeconds: 0,
  });
  const r = await ctx.ops.call(vmDir.host, 'receive', {
    ticket: open.ticket,
    dataAddress: open.dataAddress,
    sourceName: ctx.agents.get(server.host).agent.certName,
    destination: d.staging,
    sparse: true,
  });
  const seconds = Math.max((performance.now() - started) / 1000, 0.001);
  ctx.info(
    `${ctx.action}: disk ${d.diskId}: ${chain.length} backup file(s) merged on ${server.host}, ${(r.bytes / MIB).toFixed(1)} MiB of data received by ${vmDir.host} in ${seconds.toFixed(2)} s`,
  );
}
