/**
 * The data of the backup datastore benchmark (bench/backup-ds/run.ts): what a VM host's prebackup
 * leaves in `<vmdir>/backup/` (a FULL backup of a 4 GiB disk holding 2 GiB of random data, and a CBT
 * increment with 1% of the disk changed), and a 4-point chain on the backup server as the
 * repository keeps it (docs/backups.md#repository): FULL + 3 increments, each `disk.0.<inc>` in its
 * own `<backup id>/` directory beside vm.xml and SHA256SUMS. Every qcow2 is written with its format
 * and its backing pinned on the command line (json: filenames), never read from a header.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../../common/src/tools/run-tool.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
export const VIRTUAL_BYTES = 4 * GiB;
/** 64 regions of 32 MiB, one every 64 MiB: 2 GiB of data. */
const DATA_REGIONS = 64;
const DATA_REGION_BYTES = 32 * MiB;
/** An increment rewrites 10 regions of 4 MiB (about 1% of the 4 GiB disk) inside the data. */
const CHANGED_REGIONS = 10;
const CHANGED_REGION_BYTES = 4 * MiB;
export const VM_ID = 42;
/** Backup ids of the chain's points (12 hex characters, as the backup action makes them). */
export const CHAIN_BIDS = ['b0000000000a', 'b0000000001a', 'b0000000002a', 'b0000000003a'] as const;

export interface Fixture {
  /** A host's backup/ of the FULL backup: disk.0.0 and vm.xml. */
  fullDir: string;
  /** A host's backup/ of increment 1: disk.0.1 (backing name disk.0.0) and vm.xml. */
  incDir: string;
  /** Bytes of data the FULL upload moves (disk file allocation + vm.xml), and the increment. */
  fullBytes: number;
  incBytes: number;
}

/** A qcow2 opened with its backing cut off: what is written goes into this file only. */
const alone = (file: string): string =>
  `json:${JSON.stringify({ driver: 'qcow2', file: { driver: 'file', filename: file }, backing: null })}`;

async function writeRegions(
  file: string,
  regions: ReadonlyArray<{ offset: number; bytes: number }>,
  scratch: string,
  signal: AbortSignal,
): Promise<void> {
  for (const r of regions) {
    const buf = Buffer.allocUnsafe(r.bytes);
    randomFillSync(buf);
    await writeFile(scratch, buf);
    await runTool('qemu-io', ['-c', `write -q -s ${scratch} ${r.offset} ${r.bytes}`, alone(file)], {
      signal,
    });
  }
  await rm(scratch, { force: true });
}

/** Changed regions of increment `n`: inside data regions, different for each increment. */
function changedRegions(n: number): Array<{ offset: number; bytes: number }> {
  return Array.from({ length: CHANGED_REGIONS }, (_, i) => {
    const region = (i * 7 + n * 3) % DATA_REGIONS;
    return {
      offset: region * (VIRTUAL_BYTES / DATA_REGIONS) + n * CHANGED_REGION_BYTES,
      bytes: CHANGED_REGION_BYTES,
    };
  });
}

const vmXml = (): string =>
  `${Buffer.from(`<VM><ID>${VM_ID}</ID><NAME>bench</NAME><TEMPLATE><CPU>1</CPU></TEMPLATE></VM>`).toString('base64')}\n`;

async function makeFull(file: string, scratch: string, signal: AbortSignal): Promise<void> {
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', file, String(VIRTUAL_BYTES)], { signal });
  const regions = Array.from({ length: DATA_REGIONS }, (_, i) => ({
    offset: i * (VIRTUAL_BYTES / DATA_REGIONS),
    bytes: DATA_REGION_BYTES,
  }));
  await writeRegions(file, regions, scratch, signal);
}

async function makeIncrement(file: string, n: number, scratch: string, signal: AbortSignal): Promise<void> {
  // The backing name is written, not opened (-u): the relative name prebackup leaves.
  const backing = ['-u', '-F', 'qcow2', '-b', `disk.0.${n - 1}`];
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', ...backing, file, String(VIRTUAL_BYTES)], {
    signal,
  });
  await writeRegions(file, changedRegions(n), scratch, signal);
}

export async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Builds the host's two backup dirs under `hostDir` (the VM directory's place). */
export async function makeHostBackups(hostDir: string, signal: AbortSignal): Promise<Fixture> {
  const fullDir = join(hostDir, 'backup-full');
  const incDir = join(hostDir, 'backup-inc');
  await mkdir(fullDir, { recursive: true });
  await mkdir(incDir, { recursive: true });
  const scratch = join(hostDir, 'pattern');
  await makeFull(join(fullDir, 'disk.0.0'), scratch, signal);
  await makeIncrement(join(incDir, 'disk.0.1'), 1, scratch, signal);
  for (const d of [fullDir, incDir]) await writeFile(join(d, 'vm.xml'), vmXml());
  const allocated = async (f: string): Promise<number> =>
    Number((await runTool('du', ['-B1', '--', f])).stdout.split('\t')[0]);
  return {
    fullDir,
    incDir,
    fullBytes: await allocated(join(fullDir, 'disk.0.0')),
    incBytes: await allocated(join(incDir, 'disk.0.1')),
  };
}

/**
 * Writes the 4-point chain into `vmDir` (`<BASE_PATH>/<vmid>` of the backup server) from the host's
 * FULL and increment 1, and two more increments; returns each point's disk file, oldest first.
 */
export async function makeRepositoryChain(
  vmDir: string,
  fx: Fixture,
  signal: AbortSignal,
): Promise<string[]> {
  const files: string[] = [];
  for (const [n, bid] of CHAIN_BIDS.entries()) {
    const dir = join(vmDir, bid);
    await mkdir(dir, { recursive: true });
    const file = join(dir, `disk.0.${n}`);
    if (n === 0) await runTool('cp', ['--sparse=always', join(fx.fullDir, 'disk.0.0'), file], { signal });
    else if (n === 1) await runTool('cp', ['--sparse=always', join(fx.incDir, 'disk.0.1'), file], { signal });
    else await makeIncrement(file, n, join(vmDir, 'pattern'), signal);
    await writeFile(join(dir, 'vm.xml'), vmXml());
    const sums = await Promise.all(
      [`disk.0.${n}`, 'vm.xml'].map(async (f) => `${await sha256(join(dir, f))}  ${f}\n`),
    );
    await writeFile(join(dir, 'SHA256SUMS'), sums.join(''));
    files.push(file);
  }
  return files;
}

/**
 * The chain's content as qemu reads it, its backing given explicitly from the list (oldest first)
 * in dotted --image-opts syntax: `qemu-img compare --image-opts <this> <restored>` checks a restore.
 */
export function chainImageOpts(files: readonly string[]): string {
  const parts: string[] = [];
  let prefix = '';
  for (const file of [...files].reverse()) {
    parts.push(`${prefix}driver=qcow2`, `${prefix}file.driver=file`, `${prefix}file.filename=${file}`);
    prefix += 'backing.';
  }
  return parts.join(',');
}
