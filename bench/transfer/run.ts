/**
 * Data-path benchmark (not a test): an 8 GiB sparse raw image holding 2 GiB of data, copied
 *   (a) by our data path between two REAL agents (`dist/agent/src/main.js` processes started by the
 *       demo stack launcher), driven as the coordinator's transfer() drives them: OpenSend on the
 *       front-end's agent, then Receive on host01's, over gRPC with mutual TLS; once with the agents'
 *       default data.encryption (tls) and once with data.encryption: none (authenticated plaintext);
 *   (b) the OpenNebula way, `tar -cSf - | ssh (ControlMaster, warm) tar -xSf -`, against a private
 *       sshd (bench/support/ssh-server.ts), tar's stdout handed straight to ssh as its stdin;
 *   (c) locally with `cp --sparse=always`.
 * Each method runs 3 times, interleaved round by round so machine load hits all alike; each timed
 * run includes `sync` and is charged the CPU-seconds of everything taking part (bench/support/cpu.ts:
 * both agents, or sshd with its sessions and the ssh ControlMaster, this process and the tar, ssh
 * and cp it runs), and the copy is deleted (and synced) after every run, as docs/toolchain.md#benchmark-anchors
 * prescribes for comparable figures. Targets: ours at least 3x faster than tar|ssh and within 1.5x
 * of local cp, holes preserved.
 *
 *   npm run build:bench && node dist-bench/bench/transfer/run.js
 *
 * Everything it starts (two stacks of agents and coordinator, sshd, the ssh master) is stopped by
 * PID; everything it creates lives under temporary directories removed at the end. Results: stdout
 * and bench/out/transfer.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { link, mkdir, mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { loadTls } from '../../common/src/tls.js';
import { runTool } from '../../common/src/tools/run-tool.js';
import { Stack } from '../../cli/src/demo/stack.js';
import { pkiFiles } from '../../common/src/pki/pki.js';
import { AgentClient } from '../../coordinator/src/agents/agent-client.js';
import { controlMasterPid, startSshServer, type SshServer } from '../support/ssh-server.js';
import { allocatedBytes, median, timedRun, type Timed } from '../support/timed-runs.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const IMAGE_BYTES = 8 * GiB;
const REGIONS = 64;
const REGION_BYTES = 32 * MiB;
const DATA_BYTES = REGIONS * REGION_BYTES;
const RUNS = 3;
const IMAGE = 'image.raw';
/** Where the image sits on the front-end (an image datastore) and lands on host01 (a system one). */
const SOURCE_PATH = `/var/lib/one/datastores/1/${IMAGE}`;
const DEST_DIR = '/var/lib/one/datastores/0';
const DEST_PATH = `${DEST_DIR}/${IMAGE}`;
const CONTROL_DEADLINE_MS = 30_000;
const TRANSFER_DEADLINE_MS = 600_000;
const TARGET_VS_TAR_SSH = 3;
const TARGET_VS_CP = 1.5;

interface Result {
  method: string;
  times: number[];
  median: number;
  cpu: number[];
  medianCpu: number;
  cpuPerGiB: number;
  mbps: number;
  ratioVsOurs: number;
  allocated: number;
}

/** 64 regions of 32 MiB of random bytes, spread evenly over 8 GiB; the rest is holes. */
async function makeImage(path: string): Promise<void> {
  await writeFile(path, '');
  await truncate(path, IMAGE_BYTES);
  const fh = await open(path, 'r+');
  const buf = Buffer.allocUnsafe(REGION_BYTES);
  randomFillSync(buf);
  try {
    for (let i = 0; i < REGIONS; i++) {
      buf.writeUInt32BE(i, 0); // every region differs, so nothing could be deduplicated
      randomFillSync(buf, 0, 64 * 1024);
      await fh.write(buf, 0, REGION_BYTES, i * (IMAGE_BYTES / REGIONS));
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Reads the data regions once so every method starts from a warm page cache. */
async function warm(path: string): Promise<void> {
  const fh = await open(path, 'r');
  const buf = Buffer.allocUnsafe(8 * MiB);
  try {
    for (let i = 0; i < REGIONS; i++) {
      for (let off = 0; off < REGION_BYTES; off += buf.length)
        await fh.read(buf, 0, buf.length, i * (IMAGE_BYTES / REGIONS) + off);
    }
  } finally {
    await fh.close();
  }
}

function waitExit(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, sig) =>
      code === 0 ? resolve() : reject(new Error(`${what} exited with ${code ?? sig}`)),
    );
  });
}

interface Method extends Timed {
  run: () => Promise<void>;
}

/** The front-end and host01 agents of one stack, and a coordinator-side client for each. */
async function startAgents(
  encryption: 'tls' | 'none',
  image: string,
): Promise<{ stack: Stack; fe: AgentClient; host: AgentClient; dest: string; pids: () => number[] }> {
  const stack = await Stack.start({ hosts: ['frontend', 'host01'], dataEncryption: encryption });
  try {
    const tls = loadTls(pkiFiles(stack.pkiDir, 'coordinator'), 'bench');
    const client = (name: string): AgentClient =>
      new AgentClient({ name, endpoint: `127.0.0.1:${stack.agentPort(name)}`, certName: name }, tls);
    const fe = client('frontend');
    const host = client('host01');
    const local = stack.localPath('frontend', SOURCE_PATH);
    await mkdir(dirname(local), { recursive: true });
    await link(image, local); // the same inode: no second 2 GiB image, same page cache
    await host.call('makeDir', { path: DEST_DIR }, { deadlineMs: CONTROL_DEADLINE_MS, requestId: 'bench' });
    return {
      stack,
      fe,
      host,
      dest: stack.localPath('host01', DEST_PATH),
      pids: () => ['frontend', 'host01'].flatMap((h) => stack.agentPid(h) ?? []),
    };
  } catch (err) {
    await stack.stop();
    throw err;
  }
}

/** What coordinator/src/actions/transfer.ts does for a copy between two hosts. */
async function agentCopy(fe: AgentClient, host: AgentClient, label: string): Promise<void> {
  const opts = { deadlineMs: CONTROL_DEADLINE_MS, requestId: `bench-${label}` };
  const sending = await fe.call(
    'openSend',
    { path: SOURCE_PATH, ttlSeconds: 0, receiverName: host.agent.certName },
    opts,
  );
  const got = await host.call(
    'receive',
    {
      ticket: sending.ticket,
      dataAddress: sending.dataAddress,
      sourceName: fe.agent.certName,
      destination: DEST_PATH,
      sparse: true,
    },
    { ...opts, deadlineMs: TRANSFER_DEADLINE_MS },
  );
  if (got.bytes !== DATA_BYTES) throw new Error(`${label}: moved ${got.bytes} bytes, expected ${DATA_BYTES}`);
}

/** tar piped into ssh by the kernel: tar's stdout pipe is ssh's stdin; node never touches the bytes. */
async function tarSsh(ssh: SshServer, srcDir: string, destDir: string): Promise<void> {
  const tar = spawn('tar', ['-C', srcDir, '-cSf', '-', IMAGE], { stdio: ['ignore', 'pipe', 'inherit'] });
  const tarDone = waitExit(tar, 'tar');
  const pipe = tar.stdout as NonNullable<ChildProcess['stdout']>;
  const sshProc = spawn('ssh', [...ssh.args, 'tar', '-C', destDir, '-xSf', '-'], {
    stdio: [pipe, 'inherit', 'inherit'],
  });
  // ssh holds its own copy of the pipe's read end; ours would only keep the pipe open.
  pipe.destroy();
  await Promise.all([tarDone, waitExit(sshProc, 'ssh')]);
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'onestorage-bench-'));
  const stacks: Stack[] = [];
  const clients: AgentClient[] = [];
  let ssh: SshServer | undefined;
  try {
    const srcDir = join(work, 'src');
    const tarDest = join(work, 'dst');
    await mkdir(srcDir, { recursive: true });
    await mkdir(tarDest, { recursive: true });
    const image = join(srcDir, IMAGE);
    process.stdout.write(
      `creating ${IMAGE_BYTES / GiB} GiB sparse image with ${DATA_BYTES / GiB} GiB of data in ${work}\n`,
    );
    await makeImage(image);
    await warm(image);
    const srcAllocated = await allocatedBytes(image);

    const methods: Method[] = [];
    for (const [encryption, label] of [
      ['tls', 'ours (agents, mutual TLS)'],
      ['none', 'ours (agents, auth. plaintext)'],
    ] as const) {
      const { stack, fe, host, dest, pids } = await startAgents(encryption, image);
      stacks.push(stack);
      clients.push(fe, host);
      methods.push({
        label,
        dest,
        run: () => agentCopy(fe, host, label),
        times: [],
        allocated: 0,
        cpu: [],
        pids,
      });
    }
    ssh = await startSshServer(join(work, 'ssh'));
    const sshServer = ssh;
    const master = await controlMasterPid(ssh);
    methods.push({
      label: 'tar -S | ssh (ControlMaster)',
      dest: join(tarDest, IMAGE),
      run: () => tarSsh(sshServer, srcDir, tarDest),
      times: [],
      allocated: 0,
      cpu: [],
      pids: () => [sshServer.pid, master ?? 0].filter((p) => p > 0),
    });
    const cpDest = join(tarDest, `cp-${IMAGE}`);
    methods.push({
      label: 'local cp --sparse=always',
      dest: cpDest,
      run: async () => void (await runTool('cp', ['--sparse=always', image, cpDest])),
      times: [],
      allocated: 0,
      cpu: [],
    });

    for (let round = 0; round < RUNS; round++) for (const m of methods) await timedRun(m, round, m.run);

    const ours = median((methods[0] as Method).times);
    const table: Result[] = methods.map((m) => ({
      method: m.label,
      times: m.times,
      median: median(m.times),
      cpu: m.cpu ?? [],
      medianCpu: median(m.cpu ?? []),
      cpuPerGiB: median(m.cpu ?? []) / (DATA_BYTES / GiB),
      mbps: DATA_BYTES / MiB / median(m.times),
      ratioVsOurs: median(m.times) / ours,
      allocated: m.allocated,
    }));
    await report(table, srcAllocated);
  } finally {
    for (const c of clients) c.close();
    await ssh?.stop();
    for (const s of stacks) await s.stop();
    await rm(work, { recursive: true, force: true });
  }
}

async function report(table: Result[], srcAllocated: number): Promise<void> {
  const line = (cols: string[]): string =>
    cols.map((c, i) => (i === 0 ? c.padEnd(34) : c.padStart(11))).join(' ');
  process.stdout.write(
    `\n${line(['method', 'median s', 'MB/s data', 'x ours', 'CPU-s', 'CPU-s/GiB', 'dest alloc'])}\n`,
  );
  for (const r of table) {
    process.stdout.write(
      `${line([r.method, r.median.toFixed(2), r.mbps.toFixed(0), r.ratioVsOurs.toFixed(2), r.medianCpu.toFixed(2), r.cpuPerGiB.toFixed(2), `${(r.allocated / MiB).toFixed(0)} MiB`])}\n`,
    );
  }
  const [tlsOurs, plainOurs, tar, cp] = table as [Result, Result, Result, Result];
  const holes = table.slice(0, 2).every((r) => r.allocated <= srcAllocated * 1.01 + MiB);
  const targets = {
    oursTls3xFasterThanTarSsh: tar.median / tlsOurs.median >= TARGET_VS_TAR_SSH,
    oursTlsWithin1_5xOfCp: tlsOurs.median / cp.median <= TARGET_VS_CP,
    oursPlaintext3xFasterThanTarSsh: tar.median / plainOurs.median >= TARGET_VS_TAR_SSH,
    oursPlaintextWithin1_5xOfCp: plainOurs.median / cp.median <= TARGET_VS_CP,
    holesPreserved: holes,
  };
  const verdict = (ok: boolean): string => (ok ? 'holds' : 'MISSED');
  process.stdout.write(`\nsource allocated ${(srcAllocated / MiB).toFixed(0)} MiB\n`);
  process.stdout.write(
    `targets: ours <= ${(tar.median / TARGET_VS_TAR_SSH).toFixed(2)} s (tar|ssh / ${TARGET_VS_TAR_SSH}) and <= ${(cp.median * TARGET_VS_CP).toFixed(2)} s (cp x ${TARGET_VS_CP}), holes kept\n`,
  );
  for (const [name, r, fast, near] of [
    ['ours (TLS)', tlsOurs, targets.oursTls3xFasterThanTarSsh, targets.oursTlsWithin1_5xOfCp],
    [
      'ours (plaintext)',
      plainOurs,
      targets.oursPlaintext3xFasterThanTarSsh,
      targets.oursPlaintextWithin1_5xOfCp,
    ],
  ] as const) {
    process.stdout.write(
      `${name}: tar|ssh / ours = ${(tar.median / r.median).toFixed(2)}x (>= ${TARGET_VS_TAR_SSH}: ${verdict(fast)}), ours / cp = ${(r.median / cp.median).toFixed(2)}x (<= ${TARGET_VS_CP}: ${verdict(near)})\n`,
    );
  }
  process.stdout.write(`holes preserved: ${verdict(holes)}\n`);
  const out = resolve('bench', 'out');
  await mkdir(out, { recursive: true });
  const json = {
    when: new Date().toISOString(),
    imageBytes: IMAGE_BYTES,
    dataBytes: DATA_BYTES,
    sourceAllocated: srcAllocated,
    results: table,
    targets,
  };
  await writeFile(join(out, 'transfer.json'), `${JSON.stringify(json, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
