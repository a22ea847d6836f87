/**
 * Data-path CPU benchmark (not a test): the CPU-seconds per GiB that sending and receiving cost,
 * both sides counted together, without processes, gRPC or the demo stack around them. Two
 * TransferServices (agent/src/transfer) run in this process with certificates from a fresh CA; a
 * 1 GiB file of random bytes (one extent) goes from one to the other RUNS times, over mutual TLS
 * and in the authenticated plaintext mode, and each transfer is charged this process's user and
 * system time (all threads: the hashing worker, libuv's file I/O). Wall times are printed too, but
 * both sides share one event loop here: bench/transfer measures wall time between real agents.
 *
 *   npm run build:bench && node dist-bench/bench/transfer-cpu/run.js
 *
 * Everything lives under one temporary directory, removed at the end.
 */
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { initCa, issueCertificate } from '../../common/src/pki/pki.js';
import { TransferService } from '../../agent/src/transfer/transfer-service.js';
import { median } from '../support/timed-runs.js';

const GiB = 1024 ** 3;
const PIECE = 64 * 1024 ** 2;
const RUNS = 4;
const ONED = '/var/lib/one/datastores';

async function service(work: string, name: string, plaintext: boolean): Promise<TransferService> {
  const pki = join(work, 'pki');
  await initCa(pki);
  const { files } = await issueCertificate(pki, name, ['127.0.0.1'], false, 'agent');
  const root = join(work, `${name}-${plaintext ? 'plain' : 'tls'}`);
  await mkdir(join(root, '0'), { recursive: true });
  const s = new TransferService({
    name,
    tls: { ca: await readFile(files.ca), cert: await readFile(files.cert), key: await readFile(files.key) },
    listen: '127.0.0.1:0',
    resolve: (path) => Promise.resolve(join(root, path.slice(ONED.length + 1))),
    realRoots: async () => [await realpath(root)],
    logger: pino({ level: 'silent' }),
    plaintextData: plaintext,
  });
  await s.start();
  return s;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'onestorage-bench-cpu-'));
  const services: TransferService[] = [];
  try {
    process.stdout.write(`data path CPU: ${RUNS} transfers of 1 GiB per mode, both sides in one process\n`);
    for (const plaintext of [false, true]) {
      const a = await service(work, 'host-a', plaintext);
      const b = await service(work, 'host-b', plaintext);
      services.push(a, b);
      const src = join(work, `host-a-${plaintext ? 'plain' : 'tls'}`, '0', 'image');
      const fh = await open(src, 'w');
      const buf = Buffer.allocUnsafe(PIECE);
      for (let at = 0; at < GiB; at += PIECE) await fh.write(randomFillSync(buf));
      await fh.close();
      const label = plaintext ? 'authenticated plaintext (SHA-256)' : 'mutual TLS (XXH3)';
      const cpu: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const sent = await a.openSend({ path: `${ONED}/0/image`, ttlSeconds: 0, receiverName: 'host-b' });
        await b.receive(
          {
            ticket: sent.ticket,
            dataAddress: sent.dataAddress,
            sourceName: 'host-a',
            destination: `${ONED}/0/image`,
            sparse: true,
          },
          new AbortController().signal,
        );
        const c = process.cpuUsage(c0);
        const [user, system] = [c.user / 1e6, c.system / 1e6];
        cpu.push(user + system);
        process.stdout.write(
          `  ${label} run ${run + 1}: ${((performance.now() - t0) / 1000).toFixed(2)} s, ${(user + system).toFixed(2)} CPU-s per GiB (user ${user.toFixed(2)}, system ${system.toFixed(2)})\n`,
        );
      }
      process.stdout.write(`${label}: median ${median(cpu).toFixed(2)} CPU-s per GiB\n`);
    }
  } finally {
    for (const s of services) await s.close();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
