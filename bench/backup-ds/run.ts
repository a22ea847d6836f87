/**
 * Backup datastore benchmark (not a test; docs/benchmarks.md): uploading a VM's backup to the backup
 * server, a 4 GiB disk holding 2 GiB of random data (FULL) and then an increment with 1% of the disk
 * changed, and restoring a 4-point chain (FULL + 3 increments); ours (bench/backup-ds/ours.ts)
 * against OpenNebula's rsync driver's transport and restic 0.14 to a local repository
 * (bench/backup-ds/opennebula.ts), on loopback. Three interleaved rounds; each timed run includes
 * `sync`, starts from an emptied destination, and is checked afterwards (uploads: SHA-256 of the
 * stored disk file, restic: bytes processed; restores: `qemu-img compare` against the chain, backing
 * files given explicitly). Medians, ratios to ours and CPU-seconds per GiB are printed and written
 * to bench/out/backup-ds.json.
 *
 *   npm run build:bench && node dist-bench/bench/backup-ds/run.js
 *
 * BENCH_ONLY=ours|rsync|restic measures those methods alone; BENCH_DATA_ENCRYPTION=none runs our
 * agents' data path without TLS.
 *
 * Needs rsync, restic, ssh, sshd, qemu-img and qemu-io (`apt-get install -y rsync restic`). The run
 * is bounded (BENCH_TIMEOUT_MS); everything it starts (sshd, the stack) is stopped by PID and its
 * files live in one temporary directory, removed at the end.
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runTool } from '../../common/src/tools/run-tool.js';
import { controlMasterPid, startSshServer, type SshServer } from '../support/ssh-server.js';
import {
  CHAIN_BIDS,
  VM_ID,
  chainImageOpts,
  makeHostBackups,
  makeRepositoryChain,
  sha256,
} from './fixture.js';
import { measuredRun, printRows, rows, type Measured } from './measure.js';
import { requireTools, resticInit, resticUpload, rsyncRestoreChain, rsyncUpload } from './opennebula.js';
import { startOurs, type Ours } from './ours.js';

const RUNS = 3;
const BENCH_TIMEOUT_MS = 40 * 60_000;
const LOCATION = '/var/lib/one/datastores';
const UPLOAD_BID = 'c0000000000a';

interface Method extends Measured {
  pids: () => readonly number[];
  prepare: () => Promise<void>;
  run: () => Promise<void>;
  check: () => Promise<string>;
}

async function main(): Promise<void> {
  await requireTools(['rsync', 'restic', 'ssh', 'sshd', 'qemu-img', 'qemu-io']);
  const signal = AbortSignal.timeout(BENCH_TIMEOUT_MS);
  const work = await mkdtemp(join(tmpdir(), 'osb-backupds-'));
  let ssh: SshServer | undefined;
  let ours: Ours | undefined;
  try {
    const local = {
      host: join(work, 'host01'),
      backup: join(work, 'backup01'),
      frontend: join(work, 'frontend'),
    };
    const vmDir = `0/${VM_ID}`;
    process.stdout.write(`building the backups (4 GiB disk, 2 GiB data, 1% increments) in ${work}\n`);
    const fx = await makeHostBackups(join(local.host, vmDir), signal);
    const chain = await makeRepositoryChain(join(local.backup, `100/${VM_ID}`), fx, signal);
    // rsync's restore rebases the files in place: it gets its own copy of the repository.
    const rsyncRepo = join(work, 'rsync-repo');
    await mkdir(join(rsyncRepo, '100'), { recursive: true });
    await runTool('cp', [
      '-a',
      '--sparse=always',
      join(local.backup, `100/${VM_ID}`),
      join(rsyncRepo, '100'),
    ]);
    const rsyncChain = CHAIN_BIDS.map((bid, n) => join(rsyncRepo, `100/${VM_ID}/${bid}/disk.0.${n}`));
    const sums = {
      full: await sha256(join(fx.fullDir, 'disk.0.0')),
      inc: await sha256(join(fx.incDir, 'disk.0.1')),
    };
    await mkdir(local.frontend, { recursive: true });

    ssh = await startSshServer(join(work, 'ssh'));
    const master = await controlMasterPid(ssh);
    const sshPids = (): number[] => [ssh?.pid ?? 0, master ?? 0].filter((p) => p > 0);
    ours = await startOurs({
      hostDatastores: local.host,
      backupDatastores: local.backup,
      frontendDatastores: local.frontend,
    });
    if (!ours)
      process.stdout.write('ours: not wired yet (bench/backup-ds/ours.ts); the comparison side alone\n');

    const methods: Method[] = [];
    const add = (
      scenario: string,
      label: string,
      m: Omit<Method, 'scenario' | 'label' | 'times' | 'cpu'>,
    ): void => void methods.push({ scenario, label, times: [], cpu: [], ...m });
    const checkSum = async (file: string, want: string): Promise<string> => {
      if ((await sha256(file)) !== want) throw new Error(`${file}: SHA-256 differs from the source`);
      return 'sha256 ok';
    };
    const restic = join(work, 'restic-repo');
    const resticFresh = async (): Promise<void> => {
      await rm(restic, { recursive: true, force: true });
      await resticInit(restic, signal);
    };
    for (const [scenario, src, disk, want] of [
      ['upload-full', fx.fullDir, 'disk.0.0', sums.full],
      ['upload-increment', fx.incDir, 'disk.0.1', sums.inc],
    ] as const) {
      const rsyncDir = join(rsyncRepo, `100/${VM_ID}/${UPLOAD_BID}`);
      add(scenario, 'rsync -aS over ssh (ControlMaster)', {
        pids: sshPids,
        prepare: () => rm(rsyncDir, { recursive: true, force: true }),
        run: () => rsyncUpload(ssh as SshServer, src, rsyncDir, signal),
        check: () => checkSum(join(rsyncDir, disk), want),
      });
      let processed = 0;
      add(scenario, 'restic 0.14 backup, local repository', {
        pids: () => [],
        prepare: async () => {
          await resticFresh();
          if (scenario === 'upload-increment') await resticUpload(restic, fx.fullDir, ['disk.0.0'], signal);
        },
        run: async () => void (processed = await resticUpload(restic, src, [disk], signal)),
        check: async () => {
          const expected = (await stat(join(src, disk))).size + (await stat(join(src, 'vm.xml'))).size;
          if (processed !== expected) throw new Error(`restic processed ${processed} bytes, not ${expected}`);
          return `${(processed / 1024 ** 2).toFixed(0)} MiB processed`;
        },
      });
      if (ours) {
        const o = ours;
        const dir = `${LOCATION}/100/${VM_ID}/${UPLOAD_BID}`;
        add(scenario, 'ours: ReceiveBackup', {
          pids: () => o.pids(),
          prepare: () =>
            rm(join(local.backup, `100/${VM_ID}/${UPLOAD_BID}`), { recursive: true, force: true }),
          run: () =>
            o.upload(
              `${LOCATION}/${vmDir}/${scenario === 'upload-full' ? 'backup-full' : 'backup-inc'}`,
              dir,
              signal,
            ),
          check: () => checkSum(join(local.backup, `100/${VM_ID}/${UPLOAD_BID}`, disk), want),
        });
      }
    }
    const compare = async (file: string): Promise<string> => {
      await runTool(
        'qemu-img',
        ['compare', '-q', '--image-opts', chainImageOpts(chain), `driver=qcow2,file.filename=${file}`],
        { signal },
      );
      return 'same content as the chain';
    };
    const rsyncDest = join(work, 'restored-rsync.qcow2');
    add('restore-chain', 'rsync: rebase + convert + ssh cat', {
      pids: sshPids,
      prepare: () => rm(rsyncDest, { force: true }),
      run: () => rsyncRestoreChain(ssh as SshServer, rsyncChain, join(work, 'rsync-tmp'), rsyncDest, signal),
      check: () => compare(rsyncDest),
    });
    if (ours) {
      const o = ours;
      const dest = join(local.frontend, '1/restored');
      add('restore-chain', 'ours: OpenBackupChain + Receive', {
        pids: () => o.pids(),
        prepare: async () => {
          await mkdir(join(local.frontend, '1'), { recursive: true });
          await rm(dest, { force: true });
        },
        run: () =>
          o.restoreChain(
            chain.map((f) => `${LOCATION}/${f.slice(local.backup.length + 1)}`),
            `${LOCATION}/1/restored`,
            signal,
          ),
        check: () => compare(dest),
      });
    }

    // BENCH_ONLY=ours (or rsync, restic): only the methods whose label starts with it.
    const only = process.env['BENCH_ONLY'];
    const chosen = methods.filter((m) => only === undefined || m.label.startsWith(only));
    for (let round = 0; round < RUNS; round++) {
      for (const m of chosen) await measuredRun(m, round, m.pids, m);
    }
    const bytes = {
      'upload-full': fx.fullBytes,
      'upload-increment': fx.incBytes,
      'restore-chain': fx.fullBytes,
    };
    const rs = rows(chosen, bytes);
    printRows(rs);
    process.stdout.write(
      `\nCPU-s/GiB: per GiB of disk data moved (FULL ${(fx.fullBytes / 1024 ** 3).toFixed(2)} GiB, increment ${(fx.incBytes / 1024 ** 2).toFixed(0)} MiB); "x ours" is the method's median time over ours\n`,
    );
    const out = resolve('bench', 'out');
    await mkdir(out, { recursive: true });
    await writeFile(
      join(out, 'backup-ds.json'),
      `${JSON.stringify({ when: new Date().toISOString(), bytes, results: rs }, null, 2)}\n`,
    );
  } finally {
    await ours?.stop();
    await ssh?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
