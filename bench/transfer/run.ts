/**
 * Data-path benchmark (not a test): an 8 GiB sparse raw image holding 2 GiB of data, copied
 *   (a) by our data path, a front-end TransferService process → a host TransferService process on
 *       loopback (OpenSend + Receive), over mutual TLS, and again in the authenticated plaintext mode;
 *   (b) the OpenNebula way, `tar -cSf - | ssh (ControlMaster, warm) tar -xSf -`, against a private sshd;
 *   (c) locally with `cp --sparse=always`.
 * Each method runs 3 times; each timed run includes `sync`, and the copy is deleted (and synced)
 * between runs, as toolchain-notes.md prescribes for comparable figures.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/transfer/run.js
 *
 * Everything it starts (two node peers, sshd, the ssh master) is stopped by PID; everything it
 * creates lives under one temporary directory that is removed at the end. Results: stdout and
 * bench/out/transfer.json.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runTool } from '../../common/src/tools/run-tool.js';
import { initCa, issueCertificate, pkiFiles } from '../../cli/src/pki/pki.js';
import type { OpenSendResponse, ReceiveResponse } from '../../proto/gen/onestorage/agent/v1/agent.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const IMAGE_BYTES = 8 * GiB;
const REGIONS = 64;
const REGION_BYTES = 32 * MiB;
const DATA_BYTES = REGIONS * REGION_BYTES;
const RUNS = 3;
const ONED_ROOT = '/var/lib/one/datastores';
const IMAGE = 'image.raw';

interface Result {
  method: string;
  times: number[];
  median: number;
  mbps: number;
  ratioVsOurs: number;
  allocated: number;
}

class Peer {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(readonly child: ChildProcess) {
    child.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.ok) w?.resolve(m.value);
      else w?.reject(new Error(m.error));
    });
  }

  call<T>(msg: Record<string, unknown>): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, ...msg });
    });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function allocated(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

async function sync(): Promise<void> {
  await runTool('sync', []);
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

async function timed(
  label: string,
  run: () => Promise<void>,
  dest: string,
): Promise<{ times: number[]; allocated: number }> {
  const times: number[] = [];
  let alloc = 0;
  for (let i = 0; i < RUNS; i++) {
    await rm(dest, { force: true });
    await sync();
    const t0 = performance.now();
    await run();
    await sync();
    const sec = (performance.now() - t0) / 1000;
    times.push(sec);
    alloc = await allocated(dest);
    process.stdout.write(`  ${label} run ${i + 1}: ${sec.toFixed(2)} s\n`);
  }
  await rm(dest, { force: true });
  await sync();
  return { times, allocated: alloc };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'onestorage-bench-'));
  const children: ChildProcess[] = [];
  const sshBase: string[] = [];
  try {
    const src = join(work, 'fe', '0');
    const dstRoot = join(work, 'host');
    await mkdir(src, { recursive: true });
    await mkdir(join(dstRoot, '0'), { recursive: true });
    const image = join(src, IMAGE);
    process.stdout.write(
      `creating ${IMAGE_BYTES / GiB} GiB sparse image with ${DATA_BYTES / GiB} GiB of data in ${work}\n`,
    );
    await makeImage(image);
    await warm(image);
    const srcAllocated = await allocated(image);
    const dest = join(dstRoot, '0', IMAGE);

    // (a) our data path between two processes.
    const pki = join(work, 'pki');
    await initCa(pki);
    await issueCertificate(pki, 'frontend', ['127.0.0.1']);
    await issueCertificate(pki, 'host01', ['127.0.0.1']);
    const peerJs = new URL('./peer.js', import.meta.url).pathname;
    const startPeer = async (name: string, root: string, plaintext: boolean): Promise<Peer> => {
      const child = fork(peerJs, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      const peer = new Peer(child);
      await peer.call({ op: 'start', name, files: pkiFiles(pki, name), root, plaintext });
      return peer;
    };
    const results: Omit<Result, 'ratioVsOurs'>[] = [];
    for (const plaintext of [false, true]) {
      const fe = await startPeer('frontend', join(work, 'fe'), plaintext);
      const host = await startPeer('host01', dstRoot, plaintext);
      const label = plaintext ? 'ours (authenticated plaintext)' : 'ours (mutual TLS)';
      const r = await timed(
        label,
        async () => {
          const sent = await fe.call<OpenSendResponse>({ op: 'openSend', path: `${ONED_ROOT}/0/${IMAGE}` });
          const got = await host.call<ReceiveResponse>({
            op: 'receive',
            req: {
              ticket: sent.ticket,
              dataAddress: sent.dataAddress,
              sourceName: 'frontend',
              destination: `${ONED_ROOT}/0/${IMAGE}`,
              sparse: true,
            },
          });
          if (got.bytes !== DATA_BYTES)
            throw new Error(`${label}: moved ${got.bytes} bytes, expected ${DATA_BYTES}`);
        },
        dest,
      );
      results.push({
        method: label,
        ...r,
        median: median(r.times),
        mbps: DATA_BYTES / MiB / median(r.times),
      });
      await Promise.all(
        [fe, host].map(async (p) => {
          const exited = waitExit(p.child, 'peer');
          await p.call({ op: 'close' });
          await exited;
        }),
      );
    }

    // (b) tar | ssh, OpenNebula's way, against a private sshd on a loopback port.
    const sshDir = join(work, 'ssh');
    await mkdir(sshDir, { mode: 0o700 });
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    await runTool('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(sshDir, 'host_key')]);
    await runTool('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(sshDir, 'client_key')]);
    await writeFile(join(sshDir, 'authorized_keys'), await readFile(join(sshDir, 'client_key.pub')), {
      mode: 0o600,
    });
    const port = 20000 + Math.floor(Math.random() * 20000);
    const sshd = spawn(
      '/usr/sbin/sshd',
      ['-D', '-e', '-f', '/dev/null', '-p', String(port)]
        .concat(['-o', 'ListenAddress=127.0.0.1', '-o', `HostKey=${join(sshDir, 'host_key')}`])
        .concat(['-o', `AuthorizedKeysFile=${join(sshDir, 'authorized_keys')}`, '-o', 'StrictModes=no'])
        .concat([
          '-o',
          'PermitRootLogin=prohibit-password',
          '-o',
          'UsePAM=no',
          '-o',
          `PidFile=${join(sshDir, 'sshd.pid')}`,
        ])
        // bash skips root's .bashrc (pyenv init, ~120 ms) when SHLVL is set: see toolchain-notes.md.
        .concat(['-o', 'SetEnv=SHLVL=1']),
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    children.push(sshd);
    await new Promise((r) => setTimeout(r, 500));
    sshBase.push(
      ...[
        '-o',
        'ControlMaster=auto',
        '-o',
        'ControlPersist=60',
        '-o',
        `ControlPath=${join(sshDir, 'cm-%r@%h:%p')}`,
      ],
      ...[
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-o',
        'BatchMode=yes',
        '-o',
        'LogLevel=ERROR',
      ],
      ...['-i', join(sshDir, 'client_key'), '-p', String(port), 'root@127.0.0.1'],
    );
    await runTool('ssh', [...sshBase, 'true']); // warms the ControlMaster
    const tarSsh = await timed(
      'tar | ssh',
      async () => {
        const tar = spawn('tar', ['-C', src, '-cSf', '-', IMAGE], { stdio: ['ignore', 'pipe', 'inherit'] });
        const ssh = spawn('ssh', [...sshBase, 'tar', '-C', join(dstRoot, '0'), '-xSf', '-'], {
          stdio: ['pipe', 'inherit', 'inherit'],
        });
        (tar.stdout as NodeJS.ReadableStream).pipe(ssh.stdin as NodeJS.WritableStream);
        await Promise.all([waitExit(tar, 'tar'), waitExit(ssh, 'ssh')]);
      },
      dest,
    );
    results.push({
      method: 'tar -S | ssh (ControlMaster)',
      ...tarSsh,
      median: median(tarSsh.times),
      mbps: DATA_BYTES / MiB / median(tarSsh.times),
    });

    // (c) local cp.
    const cp = await timed(
      'cp --sparse=always',
      async () => void (await runTool('cp', ['--sparse=always', image, dest])),
      dest,
    );
    results.push({
      method: 'local cp --sparse=always',
      ...cp,
      median: median(cp.times),
      mbps: DATA_BYTES / MiB / median(cp.times),
    });

    const ours = (results[0] as Result).median;
    const table: Result[] = results.map((r) => ({ ...r, ratioVsOurs: r.median / ours }));
    await report(table, srcAllocated);
  } finally {
    if (sshBase.length > 0) await runTool('ssh', ['-O', 'exit', ...sshBase]).catch(() => undefined);
    for (const c of children)
      if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGTERM');
    await rm(work, { recursive: true, force: true });
  }
}

async function report(table: Result[], srcAllocated: number): Promise<void> {
  const line = (cols: string[]): string =>
    cols.map((c, i) => (i === 0 ? c.padEnd(34) : c.padStart(12))).join(' ');
  process.stdout.write(`\n${line(['method', 'median s', 'MB/s data', 'x ours', 'dest alloc'])}\n`);
  for (const r of table) {
    process.stdout.write(
      `${line([r.method, r.median.toFixed(2), r.mbps.toFixed(0), r.ratioVsOurs.toFixed(2), `${(r.allocated / MiB).toFixed(0)} MiB`])}\n`,
    );
  }
  const [tlsOurs, plainOurs, tar, cp] = table as [Result, Result, Result, Result];
  const holes = table.slice(0, 2).every((r) => r.allocated <= srcAllocated * 1.01 + MiB);
  const targets = {
    oursTls3xFasterThanTarSsh: tar.median / tlsOurs.median >= 3,
    oursTlsWithin1_5xOfCp: tlsOurs.median / cp.median <= 1.5,
    oursPlaintext3xFasterThanTarSsh: tar.median / plainOurs.median >= 3,
    oursPlaintextWithin1_5xOfCp: plainOurs.median / cp.median <= 1.5,
    holesPreserved: holes,
  };
  process.stdout.write(`\nsource allocated ${(srcAllocated / MiB).toFixed(0)} MiB\n`);
  process.stdout.write(`tar|ssh / ours(TLS) = ${(tar.median / tlsOurs.median).toFixed(2)}x (target >= 3)\n`);
  process.stdout.write(`ours(TLS) / cp = ${(tlsOurs.median / cp.median).toFixed(2)}x (target <= 1.5)\n`);
  process.stdout.write(
    `tar|ssh / ours(plaintext) = ${(tar.median / plainOurs.median).toFixed(2)}x, ours(plaintext) / cp = ${(plainOurs.median / cp.median).toFixed(2)}x\n`,
  );
  process.stdout.write(`targets: ${JSON.stringify(targets)}\n`);
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
