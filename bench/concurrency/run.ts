/**
 * bench/concurrency: a burst of 64 driver calls at once, as oned sends them when many VMs deploy
 * (it runs its TM driver with `-t 15`, more with a bigger setting), against the same 64 one after
 * another. The mix: 16 clones of a 16 MiB image to two hosts, 16 deletes of VM directories,
 * 16 shared-datastore monitor calls and 16 cheap calls (delete of an absent path), through the
 * installed shims, coordinator and three agents. Side by side in one run, OpenNebula's way for the
 * same mix: `tar -cSf - | ssh host tar -xSf -` for a clone, `ssh host rm -rf` for a delete,
 * `ssh host df` for a monitor, over a warm ControlMaster (sessions not capped). Prints the wall
 * time serial and at once, the throughput gained, p50/p99 latency of the cheap calls, and the
 * resident memory of every daemon idle and at its busiest. Writes bench/out/concurrency.json.
 *
 *   npm run build:bench && node dist-bench/bench/concurrency/run.js
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIB, makeImage, writePattern } from '../../cli/src/demo/demo-images.js';
import { writeVmXml } from '../../cli/src/demo/fake-oned/fixtures.js';
import { runAction } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION as LOC, Stack } from '../../cli/src/demo/stack.js';
import { runTool } from '../../common/src/tools/run-tool.js';
import { startSshServer, type SshServer } from '../support/ssh-server.js';

const EACH = 16;
const IMAGE_MB = 16;
const SYS = `${LOC}/0`;
const SOURCE = `${LOC}/1/concurrencybench00000000000000aa`;
const HOSTS = ['host01', 'host02'] as const;
type Kind = 'clone' | 'delete' | 'monitor' | 'cheap';

interface Call {
  kind: Kind;
  run(): Promise<void>;
}
interface Timing {
  kind: Kind;
  ms: number;
}

function monitorData(): string {
  const xml =
    `<DS_DRIVER_ACTION_DATA><DATASTORE><ID>0</ID><NAME>system</NAME><TYPE>1</TYPE>` +
    `<TM_MAD>grpc_qcow2</TM_MAD><BASE_PATH>${SYS}</BASE_PATH>` +
    `<TEMPLATE><BRIDGE_LIST><![CDATA[host01]]></BRIDGE_LIST></TEMPLATE></DATASTORE>` +
    `<DATASTORE_LOCATION>${LOC}</DATASTORE_LOCATION></DS_DRIVER_ACTION_DATA>`;
  return Buffer.from(xml).toString('base64');
}

/** The 64 calls of one round through our shims; `base` makes the VM ids of this round unique. */
async function oursRound(stack: Stack, base: number): Promise<Call[]> {
  const calls: Call[] = [];
  const shim = async (kind: Kind, action: string, driver: string, args: string[], stdin?: string) => {
    const r = await runAction(stack.remotesDir, 'tm', driver, action, args, stdin);
    if (r.code !== 0) throw new Error(`${r.command}: exit ${r.code}: ${r.stderr.trim()}`);
  };
  for (let i = 0; i < EACH; i++) {
    const host = HOSTS[i % 2] as string;
    const vm = base + i;
    await writeVmXml(stack.fixturesDir, {
      id: vm,
      disks: [{ diskId: 0, imageId: 3, source: SOURCE, format: 'raw', tmMad: 'grpc', size: IMAGE_MB }],
      history: [{ hostname: host, dsId: 0, tmMad: 'grpc' }],
    });
    calls.push({
      kind: 'clone',
      run: () =>
        shim('clone', 'clone', 'grpc', [`frontend:${SOURCE}`, `${host}:${SYS}/${vm}/disk.0`, `${vm}`, '1']),
    });
    const gone = base + 100 + i;
    await mkdir(stack.localPath(host, `${SYS}/${gone}`), { recursive: true });
    await runTool('cp', [
      '--sparse=always',
      stack.localPath('frontend', SOURCE),
      stack.localPath(host, `${SYS}/${gone}/disk.0`),
    ]);
    calls.push({
      kind: 'delete',
      run: () => shim('delete', 'delete', 'grpc', [`${host}:${SYS}/${gone}`, `${gone}`, '0']),
    });
    calls.push({
      kind: 'monitor',
      run: () => shim('monitor', 'monitor', 'grpc_qcow2', ['0'], monitorData()),
    });
    calls.push({
      kind: 'cheap',
      run: () =>
        shim('cheap', 'delete', 'grpc', [
          `${host}:${SYS}/${base + 900 + i}/disk.0`,
          `${base + 900 + i}`,
          '0',
        ]),
    });
  }
  // clone, delete, monitor, cheap, clone, ...: each kind spread over the burst.
  return calls;
}

/** The same 64 calls the way OpenNebula's ssh drivers make them, into `dest` over `ssh`. */
async function sshRound(ssh: SshServer, source: string, dest: string, base: number): Promise<Call[]> {
  const calls: Call[] = [];
  const remote = (cmd: string[]) => runTool('ssh', [...ssh.args, ...cmd], { what: `ssh ${cmd[0]}` });
  for (let i = 0; i < EACH; i++) {
    const vm = join(dest, String(base + i));
    calls.push({ kind: 'clone', run: () => tarOverSsh(ssh, source, vm) });
    const gone = join(dest, String(base + 100 + i));
    await mkdir(gone, { recursive: true });
    await runTool('cp', ['--sparse=always', source, join(gone, 'disk.0')]);
    calls.push({ kind: 'delete', run: async () => void (await remote(['rm', '-rf', gone])) });
    calls.push({ kind: 'monitor', run: async () => void (await remote(['df', '-B1M', '-P', dest])) });
    calls.push({
      kind: 'cheap',
      run: async () => void (await remote(['rm', '-rf', join(dest, String(base + 900 + i), 'disk.0')])),
    });
  }
  // clone, delete, monitor, cheap, clone, ...: each kind spread over the burst.
  return calls;
}

/** ssh/clone's copy: `tar -C dir -cSf - file | ssh host 'mkdir -p vm; tar -xSf - -C vm'`. */
function tarOverSsh(ssh: SshServer, source: string, vmDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const name = source.slice(source.lastIndexOf('/') + 1);
    const tar = spawn('tar', ['-C', source.slice(0, source.lastIndexOf('/')), '-cSf', '-', name], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    // The remote side is a shell command line by ssh's nature, as OpenNebula's drivers send it;
    // every word here is a path this bench made.
    const remote = spawn('ssh', [...ssh.args, `mkdir -p ${vmDir} && tar -xSf - -C ${vmDir}`], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    tar.stdout.pipe(remote.stdin);
    let err = '';
    remote.stderr.on('data', (b: Buffer) => (err += b.toString()));
    remote.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`tar | ssh: exit ${code}: ${err}`)),
    );
    remote.once('error', reject);
    tar.once('error', reject);
  });
}

async function timed(call: Call): Promise<Timing> {
  const started = process.hrtime.bigint();
  await call.run();
  return { kind: call.kind, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}

async function serial(calls: Call[]): Promise<{ wallMs: number; timings: Timing[] }> {
  const started = Date.now();
  const timings: Timing[] = [];
  for (const c of calls) timings.push(await timed(c));
  return { wallMs: Date.now() - started, timings };
}

async function atOnce(calls: Call[]): Promise<{ wallMs: number; timings: Timing[] }> {
  const started = Date.now();
  const timings = await Promise.all(calls.map(timed));
  return { wallMs: Date.now() - started, timings };
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** Samples every daemon's RSS every 50 ms while `work` runs; returns the highest per daemon. */
async function peakRss<T>(
  pids: Record<string, number>,
  work: Promise<T>,
): Promise<[T, Record<string, number>]> {
  const peak: Record<string, number> = {};
  let done = false;
  const sampling = (async () => {
    while (!done) {
      for (const [name, pid] of Object.entries(pids))
        peak[name] = Math.max(peak[name] ?? 0, await rssMiB(pid));
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    return [await work, peak];
  } finally {
    done = true;
    await sampling;
  }
}

function summary(label: string, r: { wallMs: number; timings: Timing[] }) {
  const cheap = r.timings.filter((t) => t.kind === 'cheap').map((t) => t.ms);
  return { label, wallS: r.wallMs / 1000, cheapP50: percentile(cheap, 50), cheapP99: percentile(cheap, 99) };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'onestorage-concurrency-'));
  const stack = await Stack.start();
  const ssh = await startSshServer(join(work, 'ssh'));
  try {
    const source = stack.localPath('frontend', SOURCE);
    await makeImage(source, 'raw', IMAGE_MB, 0x61);
    await writePattern(source, 'raw', 0x62, MIB, (IMAGE_MB - 2) * MIB);
    await mkdir(stack.localPath('host01', SYS), { recursive: true });
    const sshDest = join(work, 'ssh-dest');
    await mkdir(sshDest, { recursive: true });
    const pids = stack.pids();
    const idle: Record<string, number> = {};
    for (const [name, pid] of Object.entries(pids)) idle[name] = await rssMiB(pid);

    // A warm-up round of each, then serial and at once for both ways.
    await serial((await oursRound(stack, 1000)).slice(0, 8));
    await serial((await sshRound(ssh, source, sshDest, 1000)).slice(0, 8));
    const oursSerial = await serial(await oursRound(stack, 2000));
    const sshSerial = await serial(await sshRound(ssh, source, sshDest, 2000));
    const [oursBurst, busy] = await peakRss(pids, atOnce(await oursRound(stack, 3000)));
    const sshBurst = await atOnce(await sshRound(ssh, source, sshDest, 3000));

    const rows = [
      summary('ours, one after another', oursSerial),
      summary('ours, 64 at once', oursBurst),
      summary('ssh, one after another', sshSerial),
      summary('ssh, 64 at once', sshBurst),
    ];
    console.log(`\n64 calls (${EACH} each of clone ${IMAGE_MB} MiB, delete, monitor, cheap delete)\n`);
    console.log(
      `${'method'.padEnd(28)} ${'wall s'.padStart(8)} ${'cheap p50 ms'.padStart(13)} ${'cheap p99 ms'.padStart(13)}`,
    );
    for (const r of rows) {
      console.log(
        `${r.label.padEnd(28)} ${r.wallS.toFixed(2).padStart(8)} ${r.cheapP50.toFixed(0).padStart(13)} ${r.cheapP99.toFixed(0).padStart(13)}`,
      );
    }
    const gained = oursSerial.wallMs / oursBurst.wallMs;
    const vsSsh = sshBurst.wallMs / oursBurst.wallMs;
    console.log(
      `\nours at once vs ours one after another: ${gained.toFixed(2)}x the throughput (target >= 1)`,
    );
    console.log(`ours at once vs ssh at once: ${vsSsh.toFixed(2)}x`);
    console.log('\nresident memory (MiB): idle / busiest during the burst');
    for (const name of Object.keys(pids)) {
      console.log(
        `  ${name.padEnd(16)} ${(idle[name] ?? NaN).toFixed(0).padStart(5)} / ${(busy[name] ?? NaN).toFixed(0)}`,
      );
    }
    const outDir = join(process.cwd(), 'bench', 'out');
    await mkdir(outDir, { recursive: true });
    await writeFile(
      join(outDir, 'concurrency.json'),
      JSON.stringify({ rows, gained, vsSsh, idleRssMiB: idle, busyRssMiB: busy }, null, 2),
    );
  } finally {
    await ssh.stop();
    await stack.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
