import { readFile, readdir } from 'node:fs/promises';
import type { RootConfig } from '../config.js';
import { MONITOR_MARKER } from '../rpc/set-monitor-marker.js';

/**
 * The `.monitor` drivers whose VM directories the agent measures: ours and the OpenNebula TMs whose
 * layout it shares (a VM deployed by ssh or local keeps being monitored after the switch). Any other
 * name still gets its DS capacity line but no disk sizes (docs/monitoring.md).
 */
export const MEASURED_DRIVERS: ReadonlySet<string> = new Set(['grpc', 'ssh', 'local']);
const DATASTORE_ID = /^\d{1,9}$/;
const DRIVER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** A system datastore directory marked for host-side monitoring. */
export interface MarkedDatastore {
  id: number;
  /** This node's directory. */
  localDir: string;
  /** The marker's first line; "" when it is empty or not a driver name. */
  driver: string;
}

/**
 * Every `<root>/<id>/.monitor` of this node, in id order (kvm-probes.d/host/system/monitor_ds.rb
 * looks at the numeric directories of DATASTORE_LOCATION). A root that cannot be listed is skipped.
 */
export async function markedDatastores(roots: readonly RootConfig[]): Promise<MarkedDatastore[]> {
  const found = new Map<number, MarkedDatastore>();
  for (const root of roots) {
    const names = await readdir(root.path).catch(() => [] as string[]);
    for (const name of names.filter((n) => DATASTORE_ID.test(n))) {
      const localDir = `${root.path}/${name}`;
      const marker = await readFile(`${localDir}/${MONITOR_MARKER}`, 'utf8').catch(() => undefined);
      if (marker === undefined || found.has(Number(name))) continue;
      const first = marker.split('\n')[0]?.trim() ?? '';
      found.set(Number(name), { id: Number(name), localDir, driver: DRIVER_NAME.test(first) ? first : '' });
    }
  }
  return [...found.values()].sort((a, b) => a.id - b.id);
}
