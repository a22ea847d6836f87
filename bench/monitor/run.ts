/**
 * bench/monitor: the cost of one per-VM disk monitoring cycle over datastores of 1,000 and 10,000
 * VMs, each with 2 disks of 3 snapshots (qcow2 chains of 4 layers made with qemu-img: 8,000 and
 * 80,000 image files), measured in one run on one growing tree. For each size, ours twice: with
 * directory watches (inotify, the agent's default) and stat only (monitor.watch: false):
 *   (a) cold: a new scanner (empty cache) lists and stats everything, then the VM lines and the
 *       MONITOR_VM messages are built (base64, zlib, split under 64 KiB);
 *   (b) steady: three unchanged cycles (the first and last reported), then 1% of the files change
 *       (6% of the VMs get a guest write into an active layer, 2% a new snapshot layer and their
 *       disk.0 link moved) and one cycle is timed; a fresh scanner checks it line for line;
 *   (c) OpenNebula's method: tm/ssh/monitor_ds's `du -mL` per file
 *       (bench/monitor/opennebula-monitor-ds.sh) on the 1,000-VM tree; at 10,000 VMs its time is
 *       the 1,000-VM time scaled (one process per file: it grows with the files).
 * Wall time and CPU (ours: this process; du: its children), the cache's size and the heap and RSS
 * the cold cycle added. Writes bench/out/monitor.json; the tree is removed at the end.
 * BENCH_MONITOR_SKIP_DU=1 leaves du out; BENCH_MONITOR_FRESH_ENCODE=1 encodes each cycle's messages
 * from scratch (no MessageEncoder kept between cycles), for comparison.
 *
 *   npm run build:bench && node dist-bench/bench/monitor/run.js
 */
import { cpSync, readFileSync, readlinkSync, utimesSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import {
  DatastoreScanner,
  RACY_WINDOW_MS,
  type CacheSize,
  type ScanCounters,
} from '../../agent/src/monitor/datastore-scanner.js';
import { DirWatches } from '../../agent/src/monitor/dir-watches.js';
import { vmLine } from '../../agent/src/monitor/templates.js';
import { MessageEncoder, encodeMessages } from '../../common/src/monitord/wire.js';
import { runTool } from '../../common/src/tools/run-tool.js';
import { makeQcow2Disk, writeData } from '../../test/support/agent/monitor-fixtures.js';
import { packageRoot } from '../../cli/src/demo/processes.js';

/**
 * The datastore sizes measured, growing one tree: 1,000 VMs (where the du method runs) then 10,000
 * (the du method's time there is its 1,000-VM time scaled, it being one process per file).
 * BENCH_MONITOR_VMS=<n> runs one size (a smoke run).
 */
const SIZES = process.env['BENCH_MONITOR_VMS'] ? [Number(process.env['BENCH_MONITOR_VMS'])] : [1000, 10_000];
const DU_VMS = 1000;
const DISKS = 2;
const LAYERS = [0, 1, 2, 3]; // snapshots 0, 1, 2; layer 3 active
/** 1% of the files change: 6% of the VMs get a write into an active layer, 2% a new snapshot layer. */
const WRITES_PER_VM = 0.06;
const NEW_SNAPSHOTS_PER_VM = 0.02;
/** Unchanged cycles before the change: a running agent's steady path is warm (JIT, heap). */
const WARM_CYCLES = 3;
/** Changed cycles timed (1% each time, other files): the median is reported, the machine being shared. */
const CHANGED_ROUNDS = 3;
/** Targets: at least 200x du at 1,000 VMs; at 10,000 VMs cold within 1 s, steady within 0.1 s. */
const RATIO_TARGET = 200;
const COLD_MS_TARGET = 1000;
const STEADY_MS_TARGET = 100;
/** qcow2 layers with 4 KiB clusters (about 20 KiB each, not 196): 80,000 of them fit a CI disk. */
const QCOW2_OPTIONS = ['-o', 'cluster_size=4096'];
/** Linux reports children's CPU in /proc/self/stat in clock ticks. */
const CLOCK_TICKS = 100;

interface Row {
  method: string;
  wallMs: number;
  cpuMs: number;
  /** Of the wall time (ours): the scan, then the VM lines and the MONITOR_VM messages. */
  scanMs?: number;
  encodeMs?: number;
}

function childCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  // After "pid (comm) ": field 14 (cutime) and 15 (cstime) are at 13 and 14 here.
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS;
}

function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function timeOurs(
  method: string,
  scanner: DatastoreScanner,
  encoder: Pick<MessageEncoder, 'encode'>,
): Promise<{ row: Row; lines: string[]; messages: number; counters: ScanCounters }> {
  const cpu0 = ownCpuMs();
  const t0 = process.hrtime.bigint();
  const result = await scanner.scan();
  const t1 = process.hrtime.bigint();
  const lines = result.vms.map(vmLine);
  const { messages } = encoder.encode(
    { type: 'MONITOR_VM', status: 'SUCCESS', hostId: 1, timestamp: 1 },
    lines,
  );
  const t2 = process.hrtime.bigint();
  const wallMs = Number(t2 - t0) / 1e6;
  if (result.problems.length > 0) throw new Error(`scan problems: ${result.problems.slice(0, 3).join('; ')}`);
  return {
    row: {
      method,
      wallMs,
      cpuMs: ownCpuMs() - cpu0,
      scanMs: Number(t1 - t0) / 1e6,
      encodeMs: Number(t2 - t1) / 1e6,
    },
    lines,
    messages: messages.length,
    counters: result.counters,
  };
}

function timeDu(ds: string): Promise<{ row: Row; vms: number }> {
  const script = join(packageRoot(), 'bench', 'monitor', 'opennebula-monitor-ds.sh');
  const cpu0 = childCpuMs();
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ds], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, LANG: 'C' },
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`du method exited ${code}`));
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      resolve({
        row: {
          method: "OpenNebula's method: du -mL per file (tm/ssh/monitor_ds)",
          wallMs,
          cpuMs: childCpuMs() - cpu0,
        },
        vms: out.split('\n').filter((l) => l.startsWith('VM = [')).length,
      });
    });
  });
}

async function buildTemplate(work: string): Promise<string> {
  const template = join(work, 'template');
  for (let d = 0; d < DISKS; d++) await makeQcow2Disk(template, d, LAYERS, [0, 0, 0, 0], 64, QCOW2_OPTIONS);
  return template;
}

/** VMs `from` to `to - 1`, copies of the template, with times as a running cloud has them. */
function growTree(ds: string, template: string, from: number, to: number): void {
  const past = new Date(Date.now() - 10 * RACY_WINDOW_MS);
  for (let vm = from; vm < to; vm++) {
    const dir = join(ds, String(vm));
    cpSync(template, dir, { recursive: true, verbatimSymlinks: true });
    for (let d = 0; d < DISKS; d++) utimesSync(join(dir, `disk.${d}.snap`), past, past);
    utimesSync(dir, past, past);
  }
  utimesSync(ds, past, past);
}

/** 1% of the files change: guests write into active layers, some disks get a new snapshot layer. */
async function changeOnePercent(ds: string, vms: number, round: number): Promise<number> {
  const writes = Math.round(vms * WRITES_PER_VM);
  const snapshots = Math.round(vms * NEW_SNAPSHOTS_PER_VM);
  for (let i = 0; i < writes; i++) {
    const vm = (i * 16 + round) % vms;
    await writeData(join(ds, String(vm), `disk.${i % DISKS}`), 48, 1, 0x5a);
  }
  for (let i = 0; i < snapshots; i++) {
    const vmDir = join(ds, String((i * 47 + 5 + round) % vms));
    // On top of the active layer, whatever earlier rounds made it; the name is new in every round.
    const active = readlinkSync(join(vmDir, 'disk.0'));
    const next = 100 + round;
    await runTool('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      active,
      '-F',
      'qcow2',
      ...QCOW2_OPTIONS,
      join(vmDir, 'disk.0.snap', String(next)),
      '64M',
    ]);
    await rm(join(vmDir, 'disk.0'));
    await runTool('ln', ['-s', `disk.0.snap/${next}`, join(vmDir, 'disk.0')]);
  }
  return writes + snapshots;
}

interface SizeReport {
  vms: number;
  files: number;
  changed: number;
  watch: boolean;
  rows: Row[];
  /** Every timed 1%-changed cycle (rows holds their median). */
  changedRuns: Row[];
  counters: Record<string, ScanCounters>;
  cache: CacheSize;
  heapMb: number;
  rssMb: number;
}

/** One size, one mode (watches or stat only): cold, warm-up cycles, 1% changed, checked exact. */
async function measureOurs(
  ds: string,
  vms: number,
  watch: boolean,
  work: string,
  round: number,
): Promise<SizeReport> {
  const mode = watch ? 'watches' : 'stat only';
  const m0 = process.memoryUsage();
  const scanner = new DatastoreScanner(ds, {
    isConfined: (real) => real.startsWith(`${work}/`),
    fullRefreshEvery: 10,
    ...(watch ? { watches: new DirWatches({ max: 4 * vms + 1, used: 0, refused: undefined }) } : {}),
  });
  // As the agent's pusher: one encoder for the scanner's cycles (parts whose lines did not change
  // are not compressed again). BENCH_MONITOR_FRESH_ENCODE=1: every cycle encoded from scratch.
  const encoder = process.env['BENCH_MONITOR_FRESH_ENCODE']
    ? { encode: encodeMessages }
    : new MessageEncoder();
  try {
    const cold = await timeOurs(`ours (${mode}), ${vms} VMs: cold cycle`, scanner, encoder);
    const m1 = process.memoryUsage();
    const first = await timeOurs(
      `ours (${mode}), ${vms} VMs: first steady cycle, unchanged`,
      scanner,
      encoder,
    );
    let unchanged = first;
    for (let i = 1; i < WARM_CYCLES; i++)
      unchanged = await timeOurs(
        `ours (${mode}), ${vms} VMs: steady cycle ${i + 1}, unchanged`,
        scanner,
        encoder,
      );
    const runs: Row[] = [];
    let changed = 0;
    let steady = unchanged;
    for (let k = 0; k < CHANGED_ROUNDS; k++) {
      changed = await changeOnePercent(ds, vms, round * CHANGED_ROUNDS + k);
      steady = await timeOurs(`ours (${mode}), ${vms} VMs: steady cycle, 1% changed`, scanner, encoder);
      const check = await new DatastoreScanner(ds, { isConfined: () => true }).scan();
      if (check.vms.map(vmLine).join('\n') !== steady.lines.join('\n'))
        throw new Error(`${vms} VMs (${mode}): the steady result differs from a fresh scan`);
      runs.push(steady.row);
    }
    const median = [...runs].sort((a, b) => a.wallMs - b.wallMs)[Math.floor(CHANGED_ROUNDS / 2)] as Row;
    if (cold.lines.length !== vms) throw new Error(`expected ${vms} VMs, ours saw ${cold.lines.length}`);
    return {
      vms,
      files: vms * DISKS * LAYERS.length,
      changed,
      watch,
      rows: [
        cold.row,
        first.row,
        unchanged.row,
        { ...median, method: `${median.method} (median of ${CHANGED_ROUNDS})` },
      ],
      changedRuns: runs,
      counters: { cold: cold.counters, unchanged: unchanged.counters, steady: steady.counters },
      cache: scanner.cacheSize(),
      heapMb: (m1.heapUsed - m0.heapUsed) / 1e6,
      rssMb: (m1.rss - m0.rss) / 1e6,
    };
  } finally {
    scanner.close();
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'onestorage-monitor-bench-'));
  const ds = join(work, 'datastores', '0');
  try {
    await mkdir(ds, { recursive: true });
    const template = await buildTemplate(work);
    const reports: SizeReport[] = [];
    let du: Row | undefined;
    let built = 0;
    let round = 0;
    for (const vms of SIZES) {
      const b0 = Date.now();
      growTree(ds, template, built, vms);
      built = vms;
      console.log(
        `tree: ${vms} VMs, ${vms * DISKS * LAYERS.length} layers (${((Date.now() - b0) / 1000).toFixed(1)} s to grow)`,
      );
      // OpenNebula's method on the 1,000-VM tree, before any change (as the tree was measured cold).
      if (vms === DU_VMS && !process.env['BENCH_MONITOR_SKIP_DU']) {
        const r = await timeDu(ds);
        if (r.vms !== vms) throw new Error(`expected ${vms} VMs, du saw ${r.vms}`);
        du = r.row;
      }
      for (const watch of [false, true]) reports.push(await measureOurs(ds, vms, watch, work, round++));
    }
    const duPerVm = du ? du.wallMs / DU_VMS : NaN;
    const table: string[] = [];
    const verdicts: string[] = [];
    for (const r of reports) {
      const duMs = duPerVm * r.vms;
      for (const row of r.rows) {
        const ratio = duMs / row.wallMs;
        table.push(
          `${row.method.padEnd(74)} wall ${row.wallMs.toFixed(1).padStart(8)} ms (scan ${(row.scanMs ?? 0).toFixed(1)}, lines+zlib ${(row.encodeMs ?? 0).toFixed(1)})  CPU ${row.cpuMs.toFixed(1).padStart(8)} ms  du/ours ${ratio.toFixed(0).padStart(6)}x${r.vms === DU_VMS ? '' : ' (du scaled)'}`,
        );
      }
      const [cold, , , steady] = r.rows as [Row, Row, Row, Row];
      table.push(
        `  cache: ${JSON.stringify(r.cache)}; heap +${r.heapMb.toFixed(1)} MB, RSS +${r.rssMb.toFixed(1)} MB after the cold cycle; ${r.changed} files changed`,
      );
      if (r.watch && r.vms === DU_VMS && du)
        verdicts.push(
          `${r.vms} VMs: cold ${(duMs / cold.wallMs).toFixed(0)}x, steady ${(duMs / steady.wallMs).toFixed(0)}x faster than du (target ${RATIO_TARGET}x)`,
        );
      if (r.watch && r.vms === 10_000)
        verdicts.push(
          `10000 VMs: cold ${cold.wallMs.toFixed(0)} ms (target ${COLD_MS_TARGET}), steady ${steady.wallMs.toFixed(0)} ms (target ${STEADY_MS_TARGET})`,
        );
    }
    if (du)
      table.push(
        `${"OpenNebula's method: du -mL per file, 1000 VMs".padEnd(62)} wall ${du.wallMs.toFixed(1).padStart(8)} ms  CPU ${du.cpuMs.toFixed(1).padStart(8)} ms  (10000 VMs: ${((duPerVm * 10_000) / 1000).toFixed(0)} s, scaled)`,
      );
    for (const l of [...table, ...verdicts]) console.log(l);
    const out = join(packageRoot(), 'bench', 'out');
    await mkdir(out, { recursive: true });
    await writeFile(
      join(out, 'monitor.json'),
      `${JSON.stringify({ du, duPerVmMs: duPerVm, reports, verdicts }, null, 2)}\n`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
