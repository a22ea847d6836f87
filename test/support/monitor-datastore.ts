import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { duMiB, makeQcow2Disk } from './agent/monitor-fixtures.js';

/** What monitord should hold for one VM: disk id → MiB, "disk/snapshot" → MiB. */
export interface ExpectedDisks {
  disks: Record<number, number>;
  snapshots: Record<string, number>;
}

/**
 * A host's datastore root for the monitoring tests, built with qemu-img and qemu-io:
 * * DS 0 (`.monitor` = grpc): VM 42 with disk.0 a qcow2 chain whose snapshots have multi-digit ids
 *   (layers 8, 9, 10, 11; 11 active) and disk.1 a raw file; VM 43 without disks (skipped); VM 44
 *   with a dangling disk.0 (unreadable: named in the log, skipped) and a readable disk.3.
 * * DS 100 (`.monitor` = ssh, a layout we read): VM 7 with a two-layer chain.
 * * DS 101 (`.monitor` = a driver we do not know): VM 9, whose disks are not reported; the datastore
 *   still gets its DS line.
 * Returns the expected sizes, measured with `du -mL` as OpenNebula does.
 */
export async function buildMonitoredDatastores(root: string): Promise<Record<number, ExpectedDisks>> {
  const ds0 = join(root, '0');
  const ds100 = join(root, '100');
  const ds101 = join(root, '101');
  for (const d of [ds0, ds100, ds101]) mkdirSync(d, { recursive: true });
  writeFileSync(join(ds0, '.monitor'), 'grpc\n');
  writeFileSync(join(ds100, '.monitor'), 'ssh\n');
  writeFileSync(join(ds101, '.monitor'), 'not-a-known-driver\n');

  const vm42 = join(ds0, '42');
  const chain = await makeQcow2Disk(vm42, 0, [8, 9, 10, 11], [3, 2, 1, 4]);
  writeFileSync(join(vm42, 'disk.1'), Buffer.alloc(2 * 1024 * 1024, 7));
  mkdirSync(join(ds0, '43'));
  writeFileSync(join(ds0, '43', 'deployment.0'), '<domain/>');
  const vm44 = join(ds0, '44');
  mkdirSync(vm44);
  symlinkSync('disk.0.snap/5', join(vm44, 'disk.0'));
  writeFileSync(join(vm44, 'disk.3'), Buffer.alloc(1024 * 1024 + 1, 3));
  const vm7 = join(ds100, '7');
  const chain7 = await makeQcow2Disk(vm7, 0, [0, 1], [1, 2]);
  await makeQcow2Disk(join(ds101, '9'), 0, [0], [1]);

  const layers = chain.layers as [string, string, string, string];
  return {
    42: {
      disks: { 0: await duMiB(join(vm42, 'disk.0')), 1: await duMiB(join(vm42, 'disk.1')) },
      snapshots: {
        '0/8': await duMiB(layers[0]),
        '0/9': await duMiB(layers[1]),
        '0/10': await duMiB(layers[2]),
      },
    },
    44: { disks: { 3: await duMiB(join(vm44, 'disk.3')) }, snapshots: {} },
    7: {
      disks: { 0: await duMiB(join(vm7, 'disk.0')) },
      snapshots: { '0/0': await duMiB(chain7.layers[0] as string) },
    },
  };
}
