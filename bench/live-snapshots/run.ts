/**
 * Live snapshot create + delete cycles per minute on a running domain, side by side in
 * one run:
 *   (a) ours: `tm/grpc/snap_create_live` then `tm/grpc/snap_delete` (LCM DISK_SNAPSHOT_DELETE)
 *       through the shims, the coordinator and a real agent over mutual TLS;
 *   (b) OpenNebula's qcow2 scripts' steps (docs/opennebula/tm-actions.md#shared-and-qcow2), each action a bash script sent with
 *       `ssh host bash -s` over a warm ControlMaster, as the front-end runs them: create =
 *       readlink, `qemu-img create -b`, domfsfreeze (else suspend), `virsh snapshot-create
 *       --reuse-external`, resume, `ln -sf`; delete = `qemu-img info -U` of every file in the snap
 *       dir, `virsh dumpxml`, `virsh blockpull --base --wait`, `rm`.
 * Each cycle also writes 1 MiB into the guest's disk (not timed), so every delete merges data.
 * Two identical TCG domains (one per method), 1 GiB qcow2 disks, cycles interleaved.
 *
 *   npm run build:bench && node dist-bench/bench/live-snapshots/run.js
 */
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIB, makeImage } from '../../cli/src/demo/demo-images.js';
import { runAction } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { writeVmXml } from '../../cli/src/demo/fake-oned/fixtures.js';
import { type TestDomain, destroyIfRunning, ensureLibvirt, startDomain } from '../../test/support/libvirt.js';
import { startSshServer } from '../support/ssh-server.js';

const CYCLES = Number(process.env['CYCLES'] ?? 20);
const WARMUP = 2;
const DISK_MB = 1024;
const LCM_DISK_SNAPSHOT = 57;
const LCM_DISK_SNAPSHOT_DELETE = 59;
const IMAGE = `${ONED_DATASTORE_LOCATION}/1/be0c0ffee0c0ffee0c0ffee0c0ffee00`;
const VM_OURS = 71;
const VM_ONE = 72;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** Runs `bash -s` on the benchmark's sshd with `script` on stdin; rejects on a non-zero exit. */
function sshScript(sshArgs: readonly string[], script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', [...sshArgs, 'bash', '-s'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`ssh script failed (${code}): ${err}`)),
    );
    child.stdin.end(script);
  });
}

/** OpenNebula's qcow2 snap_create_live steps for disk.0 (docs/opennebula/snapshots.md#snap_create_live), as one remote script. */
function oneCreateScript(vmDir: string, domain: string, snapId: number): string {
  const next = snapId + 1;
  return `set -e
cd '${vmDir}'
PREV=$(readlink disk.0)
cat > /tmp/snapshot-${domain}-0-${snapId} <<EOT
<domainsnapshot><name>0-${snapId}</name><disks><disk name='vda' snapshot='external'><source file='${vmDir}/disk.0.snap/${next}'/></disk></disks></domainsnapshot>
EOT
qemu-img create -q -f qcow2 -o backing_fmt=qcow2 -b "$PREV" disk.0.snap/${next}
if timeout 10 virsh -c qemu:///system domfsfreeze ${domain} >/dev/null 2>&1; then THAW=domfsthaw; else virsh -c qemu:///system suspend ${domain} >/dev/null; THAW=resume; fi
virsh -c qemu:///system snapshot-create ${domain} --disk-only --atomic --no-metadata --reuse-external --xmlfile /tmp/snapshot-${domain}-0-${snapId} >/dev/null
virsh -c qemu:///system $THAW ${domain} >/dev/null
rm -f /tmp/snapshot-${domain}-0-${snapId}
ln -sf disk.0.snap/${next} disk.0
`;
}

/** OpenNebula's qcow2 snap_delete steps for the ACTIVE snapshot (blockpull), as one remote script. */
function oneDeleteScript(vmDir: string, domain: string, snapId: number): string {
  return `set -e
cd '${vmDir}/disk.0.snap'
for f in $(ls | grep -v current); do qemu-img info -U --output json "$f" >/dev/null 2>&1 || true; done
virsh -c qemu:///system dumpxml ${domain} >/dev/null
BASE=$(qemu-img info -U --output json ${snapId} | sed -n 's/.*"full-backing-filename": "\\(.*\\)".*/\\1/p' | head -1)
if [ -n "$BASE" ]; then virsh -c qemu:///system blockpull ${domain} vda --base "$BASE" --wait >/dev/null; else virsh -c qemu:///system blockpull ${domain} vda --wait >/dev/null; fi
rm -f ${snapId} ${snapId}.current
`;
}

async function main(): Promise<void> {
  await ensureLibvirt();
  const work = await mkdtemp(join(tmpdir(), 'onestorage-live-bench-'));
  await chmod(work, 0o755);
  const stack = await Stack.start({ baseDir: join(work, 'stack'), hosts: ['frontend', 'host01'] });
  const ssh = await startSshServer(join(work, 'ssh'));
  const domains: TestDomain[] = [];
  try {
    await makeImage(stack.localPath('frontend', IMAGE), 'qcow2', DISK_MB, 0x5a);
    const vmDir = (vm: number): string => `${ONED_DATASTORE_LOCATION}/0/${vm}`;
    const writeVm = (vm: number, lcmState: number): Promise<string> =>
      writeVmXml(stack.fixturesDir, {
        id: vm,
        lcmState,
        deployId: `one-lsb${vm}`,
        disks: [{ diskId: 0, imageId: 9, source: IMAGE, format: 'qcow2', size: DISK_MB, target: 'vda' }],
        history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
        backupConfig: { FS_FREEZE: 'AGENT' },
      });
    for (const vm of [VM_OURS, VM_ONE]) {
      await writeVm(vm, LCM_DISK_SNAPSHOT);
      const r = await runAction(stack.remotesDir, 'tm', 'grpc', 'clone', [
        `frontend:${IMAGE}`,
        `host01:${vmDir(vm)}/disk.0`,
        `${vm}`,
        '1',
      ]);
      if (r.code !== 0) throw new Error(`clone failed: ${r.stderr}`);
      // Both start from the qcow2 driver's layout: disk.0 -> disk.0.snap/0 (docs/opennebula/snapshots.md#qcow2-layout).
      const dir = stack.localPath('host01', vmDir(vm));
      await mkdir(join(dir, 'disk.0.snap'));
      await rename(join(dir, 'disk.0'), join(dir, 'disk.0.snap', '0'));
      await symlink('.', join(dir, 'disk.0.snap', 'disk.0.snap'));
      await symlink('disk.0.snap/0', join(dir, 'disk.0'));
      await destroyIfRunning(`one-lsb${vm}`);
      domains.push(
        await startDomain(
          `one-lsb${vm}`,
          [{ target: 'vda', path: stack.localPath('host01', `${vmDir(vm)}/disk.0`), format: 'qcow2' }],
          work,
        ),
      );
    }
    const [ours, one] = domains as [TestDomain, TestDomain];
    const tm = async (action: string, args: string[]): Promise<void> => {
      const r = await runAction(stack.remotesDir, 'tm', 'grpc', action, args);
      if (r.code !== 0) throw new Error(`${action} failed: ${r.stderr}`);
    };
    const times = {
      ours: { create: [] as number[], del: [] as number[] },
      one: { create: [] as number[], del: [] as number[] },
    };
    const timed = async (f: () => Promise<void>): Promise<number> => {
      const t0 = performance.now();
      await f();
      return performance.now() - t0;
    };
    const oneDir = stack.localPath('host01', vmDir(VM_ONE));
    // The OpenNebula side starts from the same layout: snapshot 0's file is disk.0.snap/0.
    for (let i = 0; i < WARMUP + CYCLES; i++) {
      const keep = i >= WARMUP;
      // ours
      await writeVm(VM_OURS, LCM_DISK_SNAPSHOT);
      const c1 = await timed(() =>
        tm('snap_create_live', [`host01:${vmDir(VM_OURS)}/disk.0`, `${i}`, `${VM_OURS}`, '0']),
      );
      await ours.write('vda', 0x10 + (i % 200), (i % 512) * 2 * MIB, MIB);
      await writeVm(VM_OURS, LCM_DISK_SNAPSHOT_DELETE);
      const d1 = await timed(() =>
        tm('snap_delete', [`host01:${vmDir(VM_OURS)}/disk.0`, `${i}`, `${VM_OURS}`, '0']),
      );
      // OpenNebula's steps
      const c2 = await timed(() => sshScript(ssh.args, oneCreateScript(oneDir, `one-lsb${VM_ONE}`, i)));
      await one.write('vda', 0x10 + (i % 200), (i % 512) * 2 * MIB, MIB);
      const d2 = await timed(() => sshScript(ssh.args, oneDeleteScript(oneDir, `one-lsb${VM_ONE}`, i)));
      if (keep) {
        times.ours.create.push(c1);
        times.ours.del.push(d1);
        times.one.create.push(c2);
        times.one.del.push(d2);
      }
    }
    const perMinute = (t: { create: number[]; del: number[] }): number =>
      60_000 / ((t.create.reduce((a, b) => a + b, 0) + t.del.reduce((a, b) => a + b, 0)) / t.create.length);
    const rows = [
      ['ours (shims -> coordinator -> agent, mTLS)', times.ours],
      ["OpenNebula's qcow2 steps over ssh (ControlMaster)", times.one],
    ] as const;
    console.log(
      `\n${CYCLES} create+delete cycles each on a running TCG domain (1 GiB qcow2, 1 MiB written per cycle)\n`,
    );
    console.log(
      `${'method'.padEnd(52)} ${'create p50'.padStart(11)} ${'delete p50'.padStart(11)} ${'cycles/min'.padStart(11)}`,
    );
    for (const [name, t] of rows) {
      console.log(
        `${name.padEnd(52)} ${median(t.create).toFixed(0).padStart(8)} ms ${median(t.del).toFixed(0).padStart(8)} ms ${perMinute(t).toFixed(1).padStart(11)}`,
      );
    }
    const ratio = perMinute(times.ours) / perMinute(times.one);
    console.log(`\nours / OpenNebula's steps: ${ratio.toFixed(2)}x the cycles per minute`);
    for (const d of domains) console.log(`${d.name}: ${await d.state()}`);
    const outDir = join(process.cwd(), 'bench', 'out');
    await mkdir(outDir, { recursive: true });
    await writeFile(
      join(outDir, 'live-snapshots.json'),
      JSON.stringify(
        {
          cycles: CYCLES,
          times,
          perMinute: { ours: perMinute(times.ours), one: perMinute(times.one) },
          ratio,
        },
        null,
        2,
      ),
    );
  } finally {
    for (const d of domains) await d.destroy();
    await ssh.stop();
    await stack.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
