// Start-up of an installed shim against `node -e 0`, hyperfine-style: warm-up runs, then N runs of
// each command interleaved (so load from other processes hits both alike), reporting p50 / p95.
// Usage: npm run build && node bench/shim-startup/run.mjs [runs=30]
// A trivial shim server answers in a child process, so its work is not on the measuring loop.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));
const WARMUP_RUNS = 3;
const DEFAULT_RUNS = 30;
const PERCENT = 100;
const P50 = 50;
const P95 = 95;

if (process.argv[2] === '--serve') {
  const { startShimServer } = await import(join(DIST, 'coordinator/src/shim-server/shim-server.js'));
  await startShimServer({
    socketPath: process.argv[3],
    handler: async (req) => ({ stdout: `${req.action} ok`, stderr: [], exitCode: 0 }),
  });
  process.send?.('ready');
} else {
  const runs = Number(process.argv[2] ?? DEFAULT_RUNS);
  const dir = await mkdtemp(join(tmpdir(), 'shim-startup-'));
  const socketPath = join(dir, 'coordinator.sock');
  const { installShims } = await import(join(DIST, 'shims/src/install.js'));
  await installShims({ remotesDir: join(dir, 'remotes'), socketPath, runtimeDir: join(DIST, 'shims/src') });
  const server = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', socketPath], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise((resolve) => server.once('message', resolve));
  try {
    const shim = join(dir, 'remotes/tm/grpc/clone');
    const commands = {
      'node -e 0': [process.execPath, ['-e', '0']],
      'shim tm/grpc/clone': [
        shim,
        ['fe:/var/lib/one/datastores/1/abc', 'host:/var/lib/one/datastores/0/7/disk.0', '7', '1'],
      ],
    };
    const check = spawnSync(...commands['shim tm/grpc/clone'], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (check.status !== 0) throw new Error(`shim failed: ${check.stderr}`);
    const times = Object.fromEntries(Object.keys(commands).map((name) => [name, []]));
    for (let i = 0; i < WARMUP_RUNS + runs; i++) {
      for (const [name, [file, args]] of Object.entries(commands)) {
        const start = process.hrtime.bigint();
        spawnSync(file, args, { stdio: 'ignore' });
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        if (i >= WARMUP_RUNS) times[name].push(ms);
      }
    }
    const summary = {};
    for (const [name, list] of Object.entries(times)) {
      list.sort((a, b) => a - b);
      summary[name] = { p50: percentile(list, P50), p95: percentile(list, P95), min: list[0] };
      console.log(
        `${name.padEnd(20)} p50 ${summary[name].p50.toFixed(1)} ms  p95 ${summary[name].p95.toFixed(1)} ms  ` +
          `min ${list[0].toFixed(1)} ms  (${runs} runs)`,
      );
    }
    const ratio = summary['shim tm/grpc/clone'].p50 / summary['node -e 0'].p50;
    console.log(`p50 ratio shim / node -e 0: ${ratio.toFixed(2)}`);
  } finally {
    server.kill();
    await rm(dir, { recursive: true, force: true });
  }
}

function percentile(sorted, p) {
  const index = Math.min(sorted.length - 1, Math.ceil((p / PERCENT) * sorted.length) - 1);
  return sorted[Math.max(0, index)];
}
