/**
 * Backup benchmark: for a 4 GiB qcow2 disk full of data with 1% of its blocks changed,
 * the time and size of an incremental backup (CBT) against a full one. Every backup is a real
 * driver call through the installed shims, the coordinator and a real agent over mutual TLS
 * (`tm/grpc/prebackup[_live]`, timed; `postbackup[_live]`, not timed), on a running TCG domain
 * (live) and then powered off:
 *   - FULL: MODE=FULL (live: temporary overlay + qemu-img convert of the base; off: convert);
 *   - INCREMENT: MODE=INCREMENT, the 1% written between the chain's first backup and the timed
 *     one (live: libvirt checkpoint + push backup-begin; off: qcow2 bitmap + qemu-nbd).
 * The 1% is written as 256 KiB pieces spread evenly over the disk (through qemu-io inside the
 * running QEMU, or qemu-io on the file when powered off). Rounds are interleaved; medians printed.
 *
 *   npm run build:bench && node dist-bench/bench/backup/run.js
 *
 * Everything it starts (stack, domain) is stopped by PID or name; its directory is removed at the
 * end. Results: stdout and bench/out/backup.json.
 */
import { statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAction, type ActionRun } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { runTool } from '../../common/src/tools/run-tool.js';
import { vmXml } from '../../cli/src/demo/fake-oned/fixtures.js';
import { type TestDomain, destroyIfRunning, ensureLibvirt, startDomain } from '../../test/support/libvirt.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const DISK_BYTES = 4 * GiB;
const CHANGED_FRACTION = 0.01;
const PIECE = 256 * 1024;
const PIECES = Math.round((DISK_BYTES * CHANGED_FRACTION) / PIECE);
const STRIDE = Math.floor(DISK_BYTES / PIECES / PIECE) * PIECE;
const FILL_CHUNK = 256 * MiB;
const RUNS = Number(process.env['RUNS'] ?? 3);
const VM = 900;
const HOST = 'host01';
const DOMAIN = `one-bk${VM}`;
const LCM_BACKUP = 69;
const LCM_BACKUP_POWEROFF = 70;

interface Sample {
  seconds: number;
  bytes: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function check(r: ActionRun): void {
  if (r.code !== 0) throw new Error(`${r.command} failed: ${r.stderr.trim()}`);
}

async function main(): Promise<void> {
  await ensureLibvirt();
  const work = await mkdtemp(join(tmpdir(), 'bench-backup-'));
  await chmod(work, 0o755);
  const stack = await Stack.start({ baseDir: join(work, 'stack'), hosts: ['frontend', HOST] });
  let dom: TestDomain | undefined;
  try {
    const onedDir = `${ONED_DATASTORE_LOCATION}/0/${VM}`;
    const dir = stack.localPath(HOST, onedDir);
    await mkdir(dir, { recursive: true });
    const disk = join(dir, 'disk.0');
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', disk, `${DISK_BYTES / MiB}M`]);
    const fill: string[] = [];
    for (let off = 0; off < DISK_BYTES; off += FILL_CHUNK)
      fill.push('-c', `write -q -P 0x5a ${off} ${FILL_CHUNK}`);
    await runTool('qemu-io', ['-f', 'qcow2', ...fill, disk], { timeoutMs: 30 * 60_000 });

    const args = [`${HOST}:${onedDir}`, '0', DOMAIN, '-', String(VM), '0'];
    const xml = (live: boolean, config: Record<string, string | number>): string =>
      vmXml({
        id: VM,
        deployId: DOMAIN,
        lcmState: live ? LCM_BACKUP : LCM_BACKUP_POWEROFF,
        disks: [
          { diskId: 0, imageId: 0, format: 'qcow2', tmMad: 'grpc', size: DISK_BYTES / MiB, target: 'vda' },
        ],
        history: [{ hostname: HOST, dsId: 0, tmMad: 'grpc' }],
        backupConfig: config,
      });
    const backup = async (
      live: boolean,
      config: Record<string, string | number>,
      id: number,
    ): Promise<Sample> => {
      const sfx = live ? '_live' : '';
      const stdin = xml(live, config);
      const started = process.hrtime.bigint();
      check(await runAction(stack.remotesDir, 'tm', 'grpc', `prebackup${sfx}`, args, stdin));
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const bytes = statSync(join(dir, 'backup', `disk.0.${id}`)).blocks * 512;
      check(await runAction(stack.remotesDir, 'tm', 'grpc', `postbackup${sfx}`, args, stdin));
      return { seconds, bytes };
    };
    const changeOnePercent = async (pattern: number): Promise<void> => {
      if (dom) {
        for (let i = 0; i < PIECES; i++) await dom.write('vda', pattern, i * STRIDE, PIECE);
      } else {
        const cmds: string[] = [];
        for (let i = 0; i < PIECES; i++) cmds.push('-c', `write -q -P ${pattern} ${i * STRIDE} ${PIECE}`);
        await runTool('qemu-io', ['-f', 'qcow2', ...cmds, disk]);
      }
    };

    const results: Record<string, Sample[]> = {};
    const add = (k: string, s: Sample): void => {
      (results[k] ??= []).push(s);
      console.log(`  ${k}: ${s.seconds.toFixed(2)} s, ${(s.bytes / MiB).toFixed(1)} MiB`);
    };
    for (const live of [true, false]) {
      if (live) {
        await destroyIfRunning(DOMAIN);
        dom = await startDomain(DOMAIN, [{ target: 'vda', path: disk, format: 'qcow2' }], dir);
      } else {
        await dom?.destroy();
        dom = undefined;
      }
      const where = live ? 'live' : 'powered off';
      for (let round = 0; round < RUNS; round++) {
        console.log(`${where}, round ${round + 1}/${RUNS}`);
        add(`FULL ${where}`, await backup(live, { MODE: 'FULL', FS_FREEZE: 'NONE' }, 0));
        await backup(live, { MODE: 'INCREMENT', LAST_INCREMENT_ID: -1 }, 0);
        await changeOnePercent(0x10 + round);
        add(
          `INCREMENT ${where} (1% changed)`,
          await backup(live, { MODE: 'INCREMENT', LAST_INCREMENT_ID: 0 }, 1),
        );
      }
    }
    const rows = Object.entries(results).map(([method, samples]) => ({
      method,
      seconds: median(samples.map((s) => s.seconds)),
      mib: median(samples.map((s) => s.bytes)) / MiB,
      runs: samples.map((s) => ({ seconds: Number(s.seconds.toFixed(3)), bytes: s.bytes })),
    }));
    console.log(
      `\n4 GiB qcow2 disk full of data, ${PIECES} × ${PIECE / 1024} KiB changed (${(PIECES * PIECE) / MiB} MiB, 1%), ${RUNS} runs, medians:\n`,
    );
    console.log('| backup | time (s) | size (MiB) |');
    console.log('|---|---|---|');
    for (const r of rows) console.log(`| ${r.method} | ${r.seconds.toFixed(2)} | ${r.mib.toFixed(1)} |`);
    const ratios: Record<string, { time: number; size: number }> = {};
    for (const where of ['live', 'powered off']) {
      const full = rows.find((r) => r.method === `FULL ${where}`);
      const incr = rows.find((r) => r.method.startsWith(`INCREMENT ${where}`));
      if (full && incr) {
        ratios[where] = { time: full.seconds / incr.seconds, size: full.mib / incr.mib };
        console.log(
          `\n${where}: incremental is ${ratios[where].time.toFixed(1)}x faster and ${ratios[where].size.toFixed(0)}x smaller than full`,
        );
      }
    }
    await mkdir(join(process.cwd(), 'bench', 'out'), { recursive: true });
    await writeFile(
      join(process.cwd(), 'bench', 'out', 'backup.json'),
      `${JSON.stringify({ date: new Date().toISOString(), diskBytes: DISK_BYTES, changedBytes: PIECES * PIECE, rows, ratios }, null, 2)}\n`,
    );
  } finally {
    await dom?.destroy();
    await stack.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
