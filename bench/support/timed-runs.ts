/**
 * The timing harness the copy benchmarks share (bench/transfer, bench/image-cp; docs/benchmarks.md):
 * each run starts from a deleted destination and a synced disk, and its time includes the `sync`
 * that puts the result on disk; the median of the runs is what is reported.
 */
import { rm, stat } from 'node:fs/promises';
import { runTool } from '../../common/src/tools/run-tool.js';
import { cpuTotal } from './cpu.js';

/** What the timed runs of one method measured. */
export interface Timed {
  label: string;
  /** Where the result lands (deleted and synced before each run, and after it). */
  dest: string;
  times: number[];
  /** Bytes the last run's result allocated on disk. */
  allocated: number;
  /**
   * With these: the CPU-seconds of each run (bench/support/cpu.ts), counting this process, its
   * reaped children and the trees of the long-lived processes `pids` names (agents, sshd...).
   */
  cpu?: number[];
  pids?: () => readonly number[];
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

export async function sync(): Promise<void> {
  await runTool('sync', []);
}

/** Bytes a file allocates on disk. */
export async function allocatedBytes(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

/**
 * One timed run of `run` for `m`; then `check` (untimed) verifies the result before it is deleted
 * and may return a note for the progress line (`MD5 ok`).
 */
export async function timedRun(
  m: Timed,
  round: number,
  run: () => Promise<void>,
  check?: () => Promise<string>,
): Promise<void> {
  await rm(m.dest, { force: true });
  await sync();
  const cpu0 = m.cpu ? await cpuTotal(m.pids?.() ?? []) : 0;
  const t0 = performance.now();
  await run();
  await sync();
  const sec = (performance.now() - t0) / 1000;
  const cpu = m.cpu ? (await cpuTotal(m.pids?.() ?? [])) - cpu0 : undefined;
  const note = check ? ` (${await check()})` : '';
  m.times.push(sec);
  if (cpu !== undefined) m.cpu?.push(cpu);
  m.allocated = await allocatedBytes(m.dest);
  await rm(m.dest, { force: true });
  await sync();
  const cpuNote = cpu === undefined ? '' : `, ${cpu.toFixed(2)} CPU-s`;
  process.stdout.write(`  ${m.label} run ${round + 1}: ${sec.toFixed(2)} s${cpuNote}${note}\n`);
}
