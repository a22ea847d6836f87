/**
 * Timed runs with CPU accounting for bench/backup-ds (docs/benchmarks.md): the wall time of each run
 * (including the `sync` that puts the result on disk) and the CPU-seconds spent by this process and
 * the children it has waited for (rsync, ssh, restic, qemu-img), plus long-lived helpers named by
 * PID (the benchmark's sshd with its finished sessions, the ssh ControlMaster, our agents), read
 * from /proc/<pid>/stat before and after.
 */
import { readdir, readFile } from 'node:fs/promises';
import { median, sync } from '../support/timed-runs.js';

const CLOCK_TICKS = 100;

export interface Measured {
  scenario: string;
  label: string;
  times: number[];
  cpu: number[];
}

/** The fields of /proc/<pid>/stat after the command name (which may hold blanks); [] when gone. */
async function statFields(pid: number | 'self'): Promise<string[]> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return text === '' ? [] : text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime + cutime + cstime (fields 14-17; index 0 is field 3), in seconds. */
function cpuSeconds(fields: readonly string[]): number {
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0) / CLOCK_TICKS;
}

/**
 * CPU-seconds of this process, the children it reaped, and every process in the trees of `pids`:
 * a live descendant counts with its own reaped children (sshd's per-connection processes outlive a
 * command run over the ControlMaster, so its rsync is not yet in sshd's own figures).
 */
async function cpuTotal(pids: readonly number[]): Promise<number> {
  const all = await readdir('/proc').then((names) => names.filter((n) => /^\d+$/.test(n)).map(Number));
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const pid of all) {
    const f = await statFields(pid);
    if (f.length === 0) continue;
    parent.set(pid, Number(f[1]));
    cpu.set(pid, cpuSeconds(f));
  }
  const roots = new Set(pids);
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 64; hops++) {
      if (roots.has(p)) return true;
      p = parent.get(p);
    }
    return false;
  };
  let total = cpuSeconds(await statFields('self'));
  for (const [pid, secs] of cpu) if (inTree(pid) && pid !== process.pid) total += secs;
  return total;
}

/**
 * One run of `m`: `prepare` (untimed: empty the destination, set up what the run starts from),
 * sync, the timed `run` and sync, then `check` (untimed) returning a note for the progress line.
 */
export async function measuredRun(
  m: Measured,
  round: number,
  pids: () => readonly number[],
  steps: { prepare: () => Promise<void>; run: () => Promise<void>; check: () => Promise<string> },
): Promise<void> {
  await steps.prepare();
  await sync();
  const cpu0 = await cpuTotal(pids());
  const t0 = performance.now();
  await steps.run();
  await sync();
  const sec = (performance.now() - t0) / 1000;
  const cpu = (await cpuTotal(pids())) - cpu0;
  const note = await steps.check();
  m.times.push(sec);
  m.cpu.push(cpu);
  process.stdout.write(
    `  ${m.scenario} ${m.label} run ${round + 1}: ${sec.toFixed(2)} s, ${cpu.toFixed(2)} CPU-s (${note})\n`,
  );
}

export interface Row {
  scenario: string;
  method: string;
  medianSeconds: number;
  medianCpuSeconds: number;
  cpuSecondsPerGiB: number;
  /** This method's median over ours in the same scenario (> 1: ours is faster). */
  timesOurs: number | undefined;
  times: number[];
}

/** Medians, the ratio to ours per scenario, and CPU-seconds per GiB of `bytes[scenario]`. */
export function rows(ms: readonly Measured[], bytes: Readonly<Record<string, number>>): Row[] {
  const out = ms.map((m) => ({
    scenario: m.scenario,
    method: m.label,
    medianSeconds: median(m.times),
    medianCpuSeconds: median(m.cpu),
    cpuSecondsPerGiB: median(m.cpu) / ((bytes[m.scenario] ?? Number.NaN) / 1024 ** 3),
    timesOurs: undefined as number | undefined,
    times: m.times,
  }));
  for (const r of out) {
    const ours = out.find((o) => o.scenario === r.scenario && o.method.startsWith('ours'));
    r.timesOurs = ours ? r.medianSeconds / ours.medianSeconds : undefined;
  }
  return out;
}

export function printRows(rs: readonly Row[]): void {
  const line = (cols: string[]): string =>
    cols.map((c, i) => (i < 2 ? c.padEnd(i === 0 ? 18 : 44) : c.padStart(10))).join(' ');
  process.stdout.write(`\n${line(['scenario', 'method', 'median s', 'CPU-s', 'CPU-s/GiB', 'x ours'])}\n`);
  for (const r of rs) {
    process.stdout.write(
      `${line([r.scenario, r.method, r.medianSeconds.toFixed(2), r.medianCpuSeconds.toFixed(2), r.cpuSecondsPerGiB.toFixed(2), r.timesOurs === undefined ? '-' : r.timesOurs.toFixed(2)])}\n`,
    );
  }
}
