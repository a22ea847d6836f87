import { mkdir, symlink } from 'node:fs/promises';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { MIB } from '../../../common/src/units.js';

/** Test and benchmark helpers for monitoring: VM directories laid out as OpenNebula lays them out. */

/** Layer i writes at i × 8 MiB: layers hold up to 8 MiB each without overlapping. */
const LAYER_STRIDE_MB = 8;

/**
 * `<vmDir>/disk.<diskId>` as the local/qcow2 drivers leave it after snapshots (docs/opennebula/snapshots.md#qcow2-layout): a
 * qcow2 chain `disk.N.snap/<layer>` (the first standalone, each next one backed by the previous
 * through the `disk.N.snap/disk.N.snap -> .` self link), `disk.N -> disk.N.snap/<last>` (the active
 * layer). `dataMb[i]` MiB of data are written into layer i with qemu-io, so sizes are known.
 */
export async function makeQcow2Disk(
  vmDir: string,
  diskId: number,
  layers: readonly number[],
  dataMb: readonly number[],
  virtualMb = 64,
  createOptions: readonly string[] = [],
): Promise<{ active: string; layers: string[] }> {
  const name = `disk.${diskId}`;
  const snapDir = `${vmDir}/${name}.snap`;
  await mkdir(snapDir, { recursive: true });
  await symlink('.', `${snapDir}/${name}.snap`);
  const files: string[] = [];
  for (const [i, layer] of layers.entries()) {
    const file = `${snapDir}/${layer}`;
    const previous = i > 0 ? `${name}.snap/${layers[i - 1]}` : undefined;
    await runTool('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      ...(previous ? ['-b', previous, '-F', 'qcow2'] : []),
      ...createOptions,
      file,
      `${virtualMb}M`,
    ]);
    const mb = dataMb[i] ?? 0;
    // Each layer writes its own region, so every layer holds its data (not an overwrite).
    if (mb > 0) await writeData(file, i * LAYER_STRIDE_MB, mb, 0x40 + i);
    files.push(file);
  }
  const last = layers[layers.length - 1];
  await symlink(`${name}.snap/${last}`, `${vmDir}/${name}`);
  return { active: files[files.length - 1] as string, layers: files };
}

/** Writes `mb` MiB of pattern `byte` at `offsetMb` into a qcow2 image (with its chain). */
export async function writeData(file: string, offsetMb: number, mb: number, byte: number): Promise<void> {
  await runTool('qemu-io', [
    '-f',
    'qcow2',
    '-c',
    `write -P 0x${byte.toString(16)} ${offsetMb * MIB} ${mb * MIB}`,
    file,
  ]);
}

/** `du -mL FILE`'s number: OpenNebula's measure of one file (docs/opennebula/monitoring.md#monitor_ds). */
export async function duMiB(file: string): Promise<number> {
  const { stdout } = await runTool('du', ['-mL', file]);
  return Number(stdout.split('\t')[0]);
}
