import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MonitordSender } from '../../../../common/src/monitord/monitord-sender.js';
import { MonitorMessageType, NO_HOST_ID, encodeMessages } from '../../../../common/src/monitord/wire.js';
import type { ActionContext } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { cleanPath } from '../host-path.js';
import { MONITOR_ARGS } from '../oned-signatures.js';
import { parseMonitorRequest } from '../ds-image/ds-driver-action.js';
import { monitorHost } from '../ds-image/monitor-host.js';

/**
 * TM `monitor` of a shared system datastore (tm/qcow2/monitor, docs/opennebula/monitoring.md#shared-system-datastore-monitor): run once, on the
 * first healthy BRIDGE_LIST agent or the front-end's; prints `USED_MB=u FREE_MB=f TOTAL_MB=t` (one
 * line, as the script's unquoted echo does) and, when oned sets MONITOR_VM_DISKS=1, sends the VMs'
 * disk sizes to monitord as MONITOR_VM with host id -1 (timestamp 0: no ordering check).
 */
export const monitorSharedSystemDs = defineAction(
  {
    signature: MONITOR_ARGS,
    does: "reports the shared system datastore's usage from one BRIDGE_LIST or front-end agent; with MONITOR_VM_DISKS=1 sends the VMs' disk sizes to monitord",
  },
  async (ctx, { ds_id: id }) => {
    const req = parseMonitorRequest(ctx.stdin);
    const location = cleanPath(req.datastoreLocation ?? ctx.config.datastoreLocation);
    const host = await monitorHost(ctx, req.bridgeList);
    const r = await ctx.ops.call(host, 'monitorDatastore', {
      datastoreDir: `${location}/${id}`,
      vmDisks: req.monitorVmDisks,
    });
    if (req.monitorVmDisks && r.vmLines.length > 0) await sendVmDisks(ctx, r.vmLines);
    return { stdout: `USED_MB=${r.usedMb} FREE_MB=${r.freeMb} TOTAL_MB=${r.totalMb}\n` };
  },
);

async function sendVmDisks(ctx: ActionContext, vmLines: readonly string[]): Promise<void> {
  const { address, port, publicKey } = ctx.config.monitord;
  const key = publicKey ? createPublicKey(readFileSync(publicKey)) : undefined;
  const { messages, tooLarge } = encodeMessages(
    { type: MonitorMessageType.MonitorVm, status: 'SUCCESS', hostId: NO_HOST_ID, timestamp: 0 },
    vmLines,
    key ? { publicKey: key } : {},
  );
  for (const line of tooLarge)
    ctx.logger.error({ line: line.slice(0, 80) }, 'datastore monitor: VM line over 64 KiB');
  const sender = new MonitordSender({ address, port });
  try {
    await sender.send(messages);
  } catch (err) {
    // The capacity figures still reach oned; the disk sizes come again next cycle.
    ctx.info(`datastore monitor: VM disk sizes not sent: ${(err as Error).message}`);
  } finally {
    await sender.close();
  }
}
