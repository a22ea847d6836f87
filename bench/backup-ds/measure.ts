/**
 * Timed runs with CPU accounting for bench/backup-ds (docs/benchmarks.md): the wall time of each run
 * (including the `sync` that puts the result on disk) and its CPU-seconds (bench/support/cpu.ts).
 */
import { cpuTotal } from '../support/cpu.js';
import { median, sync } from '../support/timed-runs.js';

export interface Measured {
  scenario: string;
  label: string;
  times: number[];
  cpu: number[];
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
