/**
 * bench/roundtrip: what one cheap driver call costs oned, end to end. In one run, interleaved so
 * machine load hits all alike, 50 timed runs each (after warm-up) of:
 *   (a) ours: the installed shim `tm/grpc/delete` of an absent path (shim process → coordinator →
 *       agent Delete over mutual TLS → reply), as one_tm runs it;
 *   (b) `node -e 0`: the start-up floor of any Node program;
 *   (c) `ssh host true` over a warm ControlMaster (OpenNebula's settings, a clean shell): the cost
 *       of the round trip OpenNebula's ssh drivers pay per remote command.
 * Prints p50/p95 and ratios; target: our p50 within 1.3x of `node -e 0`. Writes bench/out/roundtrip.json.
 *
 *   npm run build:bench && node dist-bench/bench/roundtrip/run.js
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Stack } from '../../cli/src/demo/stack.js';
import { startSshServer } from '../support/ssh-server.js';

const RUNS = 50;
const WARMUP = 5;
const TARGET_RATIO = 1.3;

function timeProcess(file: string, args: readonly string[]): Promise<number> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) reject(new Error(`${file} ${args.join(' ')} exited ${code}: ${err.trim()}`));
      else resolve(Number(process.hrtime.bigint() - started) / 1e6);
    });
  });
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'onestorage-roundtrip-'));
  const stack = await Stack.start({ hosts: ['frontend', 'host01'] });
  const ssh = await startSshServer(join(work, 'ssh'));
  try {
    const shim = join(stack.remotesDir, 'tm', 'grpc', 'delete');
    const methods: Array<[string, string, string[]]> = [
      [
        'ours: shim tm/grpc/delete (absent path)',
        shim,
        ['host01:/var/lib/one/datastores/0/999999/disk.0', '999999', '0'],
      ],
      ['node -e 0', process.execPath, ['-e', '0']],
      ['ssh (ControlMaster, warm) host true', 'ssh', [...ssh.args, 'true']],
    ];
    const times = methods.map((): number[] => []);
    for (let i = 0; i < WARMUP + RUNS; i++) {
      for (const [m, [, file, args]] of methods.entries()) {
        const ms = await timeProcess(file, args);
        if (i >= WARMUP) times[m]?.push(ms);
      }
    }
    const rows = methods.map(([name], m) => ({
      method: name,
      p50: percentile(times[m] ?? [], 50),
      p95: percentile(times[m] ?? [], 95),
    }));
    const floor = rows[1]?.p50 ?? NaN;
    console.log(`\n${RUNS} runs each, interleaved, after ${WARMUP} warm-up rounds\n`);
    console.log(
      `${'method'.padEnd(42)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)} ${'p50 / node -e 0'.padStart(16)}`,
    );
    for (const r of rows) {
      console.log(
        `${r.method.padEnd(42)} ${r.p50.toFixed(1).padStart(8)} ${r.p95.toFixed(1).padStart(8)} ${(r.p50 / floor).toFixed(2).padStart(16)}`,
      );
    }
    const ratio = (rows[0]?.p50 ?? NaN) / floor;
    console.log(
      `\ntarget: our p50 within ${TARGET_RATIO}x of node -e 0: ${ratio <= TARGET_RATIO ? 'holds' : 'MISSED'} (${ratio.toFixed(2)}x)`,
    );
    const outDir = join(process.cwd(), 'bench', 'out');
    await mkdir(outDir, { recursive: true });
    await writeFile(
      join(outDir, 'roundtrip.json'),
      JSON.stringify({ runs: RUNS, rows, ratio, target: TARGET_RATIO }, null, 2),
    );
  } finally {
    await ssh.stop();
    await stack.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
