/**
 * Image registration benchmark (not a test): datastore `cp` of a 4 GiB qcow2 holding 1 GiB of random
 * data (written with qemu-io, format pinned), ours against OpenNebula's fs driver on the same machine.
 *   (a) from a loopback HTTP server (cli/src/demo/file-server.ts), the image as is and gzip'd:
 *       ours is ImportImage on the front-end's real agent (MD5 checked on the way, gzip detected and
 *       decompressed, holes dug, renamed into place); OpenNebula's is fs/cp's local mode
 *       (bench/image-cp/opennebula-cp.sh: curl | tee to MD5 | gunzip > file, qemu-img info,
 *       fallocate -d; docs/opennebula/image-datastore.md#cp-local-mode);
 *   (b) a file on the front-end registered on a BRIDGE_LIST host: ours is OpenImportSource on the
 *       front-end's agent and ImportImage (remote) on host01's, over the data path; OpenNebula's is
 *       `cat file | ssh host dd of=staging bs=64k conv=sparse`, then `mv` and `qemu-img info` over
 *       ssh (docs/opennebula/image-datastore.md#cp-bridge-mode), against a private sshd with a warm
 *       ControlMaster (bench/support/ssh-server.ts).
 * Every method is given the expected MD5 and every result is checked afterwards: same MD5 as the
 * original qcow2, format qcow2; its allocated size is reported. Three interleaved rounds; each
 * timed run includes `sync` and starts from a deleted destination (docs/benchmarks.md).
 *
 *   npm run build:bench && node dist-bench/bench/image-cp/run.js [--opennebula-only]
 *
 * `--opennebula-only` times OpenNebula's side alone (no agents). The whole run is bounded
 * (BENCH_TIMEOUT_MS): past it, everything in flight is cancelled. Everything it starts (stack,
 * HTTP server, sshd) is stopped by PID; its files live in one temporary directory removed at the end.
 * Results: stdout and bench/out/image-cp.json.
 */
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runTool } from '../../common/src/tools/run-tool.js';
import { packageRoot } from '../../cli/src/demo/processes.js';
import { startFileServer, type FileServer } from '../../cli/src/demo/file-server.js';
import { startSshServer, type SshServer } from '../support/ssh-server.js';
import { allocatedBytes, median, timedRun, type Timed } from '../support/timed-runs.js';
import { startOurs, type Ours } from './ours.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const VIRTUAL_BYTES = 4 * GiB;
const REGIONS = 32;
const REGION_BYTES = 32 * MiB;
const RUNS = 3;
const BENCH_TIMEOUT_MS = 30 * 60_000;
const QCOW2 = 'image.qcow2';
const GZIP = 'image.qcow2.gz';

export interface Method extends Timed {
  part: 'a' | 'b';
  run: (signal: AbortSignal) => Promise<void>;
}

const md5Of = async (path: string, signal: AbortSignal): Promise<string> =>
  (await runTool('md5sum', [path], { signal })).stdout.split(' ')[0] ?? '';

/** A 4 GiB qcow2 with 32 regions of 32 MiB of distinct random bytes spread over it. */
async function makeImage(dir: string, signal: AbortSignal): Promise<string> {
  const image = join(dir, QCOW2);
  const pattern = join(dir, 'pattern');
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', image, String(VIRTUAL_BYTES)], { signal });
  const buf = Buffer.allocUnsafe(REGION_BYTES);
  for (let i = 0; i < REGIONS; i++) {
    randomFillSync(buf);
    await writeFile(pattern, buf);
    const offset = i * (VIRTUAL_BYTES / REGIONS);
    await runTool(
      'qemu-io',
      ['-f', 'qcow2', '-c', `write -q -s ${pattern} ${offset} ${REGION_BYTES}`, image],
      {
        signal,
      },
    );
  }
  await rm(pattern);
  return image;
}

async function gzipTo(src: string, dest: string, signal: AbortSignal): Promise<void> {
  const out = await open(dest, 'w');
  try {
    await new Promise<void>((done, fail) => {
      const child = spawn('gzip', ['-1', '-c', src], { stdio: ['ignore', out.fd, 'inherit'], signal });
      child.once('error', fail);
      child.once('exit', (code) => (code === 0 ? done() : fail(new Error(`gzip exited with ${code}`))));
    });
  } finally {
    await out.close();
  }
}

/** Runs bench/image-cp/opennebula-cp.sh in its own process group, killed as a group on abort. */
function opennebulaCp(args: readonly string[], signal: AbortSignal): Promise<string> {
  const script = join(packageRoot(), 'bench', 'image-cp', 'opennebula-cp.sh');
  return new Promise((done, fail) => {
    const child = spawn('bash', [script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LANG: 'C' },
      detached: true,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-2000)));
    const onAbort = (): void => {
      if (child.pid) process.kill(-child.pid, 'SIGTERM');
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', fail);
    child.once('exit', (code) => {
      signal.removeEventListener('abort', onAbort);
      if (code !== 0) return fail(new Error(`opennebula-cp.sh ${args[0]} exited ${code}: ${err.trim()}`));
      if (!/ qcow2\n$/.test(out)) return fail(new Error(`opennebula-cp.sh printed "${out.trim()}"`));
      done(out);
    });
  });
}

/** One timed run (bench/support/timed-runs.ts); then the registered image's MD5 is checked. */
function timedCheckedRun(m: Method, round: number, md5: string, signal: AbortSignal): Promise<void> {
  return timedRun(
    m,
    round,
    () => m.run(signal),
    async () => {
      const got = await md5Of(m.dest, signal);
      if (got !== md5) throw new Error(`${m.label}: the registered image's MD5 is ${got}, not ${md5}`);
      return 'MD5 ok';
    },
  );
}

async function main(): Promise<void> {
  const opennebulaOnly = process.argv.includes('--opennebula-only');
  const signal = AbortSignal.timeout(BENCH_TIMEOUT_MS);
  const work = await mkdtemp(join(tmpdir(), 'osb-imgcp-'));
  let server: FileServer | undefined;
  let ssh: SshServer | undefined;
  let ours: Ours | undefined;
  try {
    const srcDir = join(work, 'src');
    const destDir = join(work, 'dst');
    await mkdir(srcDir, { recursive: true });
    await mkdir(destDir, { recursive: true });
    process.stdout.write(
      `creating a ${VIRTUAL_BYTES / GiB} GiB qcow2 with ${(REGIONS * REGION_BYTES) / GiB} GiB of data in ${work}\n`,
    );
    const image = await makeImage(srcDir, signal);
    process.stdout.write('gzip of the qcow2\n');
    await gzipTo(image, join(srcDir, GZIP), signal);
    const files = {
      qcow2: { size: (await stat(image)).size, md5: await md5Of(image, signal) },
      gzip: { size: (await stat(join(srcDir, GZIP))).size, md5: await md5Of(join(srcDir, GZIP), signal) },
    };
    const sourceAllocated = await allocatedBytes(image);
    server = await startFileServer(srcDir);
    ssh = await startSshServer(join(work, 'ssh'));
    const sshArgs = ['ssh', ...ssh.args];

    const url = server.url;
    const methods: Method[] = [];
    const add = (part: Method['part'], label: string, dest: string, run: Method['run']): void =>
      void methods.push({ part, label, dest, run, times: [], allocated: 0 });
    if (!opennebulaOnly) {
      ours = await startOurs(srcDir);
      const o = ours;
      add('a', 'ours: ImportImage, qcow2 over http', o.dest('frontend', 'a-qcow2'), (s) =>
        o.importUrl(`${url}/${QCOW2}`, files.qcow2.md5, 'a-qcow2', s),
      );
      add('a', 'ours: ImportImage, gzip over http', o.dest('frontend', 'a-gzip'), (s) =>
        o.importUrl(`${url}/${GZIP}`, files.gzip.md5, 'a-gzip', s),
      );
    }
    for (const [kind, name] of [
      ['qcow2', QCOW2],
      ['gzip', GZIP],
    ] as const) {
      const dest = join(destDir, `a-on-${kind}`);
      add('a', `fs/cp: curl${kind === 'gzip' ? ' | gunzip' : ''}, ${kind} over http`, dest, (s) =>
        opennebulaCp(['local', `${url}/${name}`, dest, files[kind].md5], s).then(() => undefined),
      );
    }
    if (!opennebulaOnly && ours) {
      const o = ours;
      add('b', 'ours: OpenImportSource + ImportImage', o.dest('host01', 'b-qcow2'), (s) =>
        o.importFromFrontend(image, files.qcow2.md5, 'b-qcow2', s),
      );
    }
    const bridgeDest = join(destDir, 'bridge', 'b-on-qcow2');
    add('b', 'fs/cp: cat | ssh dd conv=sparse', bridgeDest, (s) =>
      opennebulaCp(
        ['bridge', image, bridgeDest, join(destDir, 'staging'), files.qcow2.md5, ...sshArgs],
        s,
      ).then(() => undefined),
    );

    // Warm the page cache for every method alike.
    await md5Of(join(srcDir, GZIP), signal);
    for (let round = 0; round < RUNS; round++)
      for (const m of methods) await timedCheckedRun(m, round, files.qcow2.md5, signal);
    await report(methods, files, sourceAllocated);
  } finally {
    await ours?.stop();
    await ssh?.stop();
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

async function report(
  methods: Method[],
  files: { qcow2: { size: number; md5: string }; gzip: { size: number; md5: string } },
  sourceAllocated: number,
): Promise<void> {
  const line = (cols: string[]): string =>
    cols.map((c, i) => (i === 0 ? c.padEnd(40) : c.padStart(11))).join(' ');
  const rows = methods.map((m) => ({
    part: m.part,
    method: m.label,
    times: m.times,
    median: median(m.times),
    // MB/s of image bytes (the qcow2 file) registered: the same bytes whatever travelled.
    mbps: files.qcow2.size / MiB / median(m.times),
    allocated: m.allocated,
    ratioVsOurs: 0,
  }));
  for (const part of ['a', 'b'] as const) {
    const inPart = rows.filter((r) => r.part === part);
    process.stdout.write(
      `\n(${part}) ${part === 'a' ? 'from an HTTP server to the front-end' : 'a front-end file to a BRIDGE_LIST host'}\n`,
    );
    process.stdout.write(`${line(['method', 'median s', 'MB/s', 'x ours', 'allocated'])}\n`);
    for (const r of inPart) {
      // Compare each of OpenNebula's rows with ours for the same source (qcow2 or gzip).
      const kind = r.method.includes('gzip') ? 'gzip' : 'qcow2';
      const ourRow = inPart.find(
        (o) => o.method.startsWith('ours') && (part === 'b' || o.method.includes(kind)),
      );
      r.ratioVsOurs = ourRow ? r.median / ourRow.median : Number.NaN;
      process.stdout.write(
        `${line([r.method, r.median.toFixed(2), r.mbps.toFixed(0), Number.isNaN(r.ratioVsOurs) ? '-' : r.ratioVsOurs.toFixed(2), `${(r.allocated / MiB).toFixed(0)} MiB`])}\n`,
      );
    }
  }
  process.stdout.write(
    `\nqcow2 file ${(files.qcow2.size / MiB).toFixed(0)} MiB (allocated ${(sourceAllocated / MiB).toFixed(0)} MiB), gzip ${(files.gzip.size / MiB).toFixed(0)} MiB; "x ours" is the method's time over ours for the same source\n`,
  );
  const out = resolve('bench', 'out');
  await mkdir(out, { recursive: true });
  await writeFile(
    join(out, 'image-cp.json'),
    `${JSON.stringify({ when: new Date().toISOString(), virtualBytes: VIRTUAL_BYTES, files, sourceAllocated, results: rows }, null, 2)}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
