// A fabricated grpc_backup repository chain for the restore tests: real qcow2 files laid out as
// the backup hooks and ReceiveBackup leave them (`<vmDir>/<bid>/disk.<disk>.<inc>`, each increment
// naming its parent by the relative name `disk.<disk>.<parent>`, a SHA256SUMS per directory), and,
// for every restore point, a raw file with the bytes the disk held then.
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../../common/src/tools/run-tool.js';

/** One guest write: `pattern` byte over [offset, offset+length) (64 KiB aligned: whole clusters). */
export interface GuestWrite {
  pattern: number;
  offset: number;
  length: number;
}

export interface FabricatedChain {
  /** Local path of each increment's disk file, oldest first. */
  files: string[];
  /** Its backup id (directory name). */
  bids: string[];
  /** Raw image of the disk at each point. */
  expected: string[];
}

export const CHAIN_DISK_BYTES = 4 * 1024 * 1024;

/**
 * `<64 hex>  <name>` lines for `names` in `dir` (every file of `dir` but SHA256SUMS and dot-names,
 * sorted, when not given): the SHA256SUMS a backup directory holds (docs/backups.md#repository).
 */
export async function writeSums(dir: string, names?: readonly string[]): Promise<void> {
  const listed = names ?? (await readdir(dir)).filter((n) => n !== 'SHA256SUMS' && !n.startsWith('.')).sort();
  const lines: string[] = [];
  for (const n of listed) {
    const digest = createHash('sha256')
      .update(await readFile(join(dir, n)))
      .digest('hex');
    lines.push(`${digest}  ${n}\n`);
  }
  await writeFile(join(dir, 'SHA256SUMS'), lines.join(''));
}

/** A json: name opening only `file` as qcow2 (no backing): writes land in that layer alone. */
export function layerOnly(file: string): string {
  return `json:${JSON.stringify({ driver: 'qcow2', file: { driver: 'file', filename: file }, backing: null })}`;
}

export async function qemuIoWrite(target: string, w: GuestWrite, format?: 'raw'): Promise<void> {
  const args = format ? ['-f', format] : [];
  await runTool('qemu-io', [...args, '-c', `write -P ${w.pattern} ${w.offset} ${w.length}`, target]);
}

/**
 * Builds the chain in `vmDir` (a local `<...>/<vmid>` directory), one backup per entry of
 * `points` (the first a FULL), and the expected raw images in `work`.
 */
export async function fabricateChain(
  vmDir: string,
  work: string,
  points: ReadonlyArray<{ bid: string; writes: readonly GuestWrite[] }>,
  disk = 0,
): Promise<FabricatedChain> {
  const out: FabricatedChain = { files: [], bids: [], expected: [] };
  await mkdir(work, { recursive: true });
  const current = join(work, `current-${vmDir.split('/').pop() ?? ''}-disk${disk}.raw`);
  await runTool('qemu-img', ['create', '-q', '-f', 'raw', current, String(CHAIN_DISK_BYTES)]);
  for (const [inc, p] of points.entries()) {
    const dir = join(vmDir, p.bid);
    await mkdir(dir, { recursive: true });
    const name = `disk.${disk}.${inc}`;
    const file = join(dir, name);
    const backing = inc === 0 ? [] : ['-u', '-b', `disk.${disk}.${inc - 1}`, '-F', 'qcow2'];
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', ...backing, file, String(CHAIN_DISK_BYTES)]);
    for (const w of p.writes) {
      await qemuIoWrite(layerOnly(file), w);
      await qemuIoWrite(current, w, 'raw');
    }
    const expected = join(work, `${p.bid}-disk${disk}.raw`);
    await copyFile(current, expected);
    await writeSums(dir, await filesIn(dir));
    out.files.push(file);
    out.bids.push(p.bid);
    out.expected.push(expected);
  }
  return out;
}

/** The files SHA256SUMS lists: every name but itself and dot-names. */
export async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n !== 'SHA256SUMS' && !n.startsWith('.')).sort();
}
