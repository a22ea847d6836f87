// Backups through a real agent (gRPC over mutual TLS) with real libvirt TCG domains, qemu-img,
// qemu-nbd and qemu-io: every backup chain is restored (rebase + convert) and compared byte for
// byte with what the disk held at the backup point.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pkiFiles } from '../cli/src/pki/pki.js';
import type {
  AgentServiceClient,
  BackupPrepareRequest,
  BackupPrepareResponse,
} from '../proto/gen/onestorage/agent/v1/agent.js';
import { parseAgentConfig } from '../agent/src/config.js';
import { type RunningAgent, startAgent } from '../agent/src/server.js';
import {
  AGENT_NAME,
  LOCATION,
  agentClient,
  call,
  failure,
  makePki,
} from '../agent/src/testing/agent-fixture.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { keep, restoreMatches, snapshotContent } from './support/backup-chain.js';
import {
  LIBVIRT_URI,
  type TestDomain,
  destroyIfRunning,
  ensureLibvirt,
  startDomain,
} from './support/libvirt.js';

const run = promisify(execFile);
const MIB = 1024 * 1024;
const DISK_MB = 64;
/** An increment is the changed data plus qcow2 metadata: well under this over what was written. */
const INCREMENT_SLACK = 1 * MIB;

let base: string;
let root: string;
let agent: RunningAgent;
let client: AgentServiceClient;
const domains: TestDomain[] = [];
let vmSeq = 100;

async function virsh(...args: string[]): Promise<string> {
  return (await run('virsh', ['-c', LIBVIRT_URI, '-q', ...args])).stdout;
}

async function qemuIo(file: string, format: string, cmd: string): Promise<void> {
  await runTool('qemu-io', ['-f', format, '-c', cmd, file]);
}

interface Vm {
  id: number;
  dir: string;
  onedDir: string;
  domain: string;
  repo: string;
  disk(n: number): string;
}

async function newVm(disks: Array<{ format: 'qcow2' | 'raw'; sizeMb?: number }>): Promise<Vm> {
  const id = vmSeq++;
  const dir = join(root, '0', String(id));
  await mkdir(dir, { recursive: true });
  const repo = join(base, 'repo', String(id));
  await mkdir(repo, { recursive: true });
  for (const [i, d] of disks.entries()) {
    await runTool('qemu-img', [
      'create',
      '-q',
      '-f',
      d.format,
      join(dir, `disk.${i}`),
      `${d.sizeMb ?? DISK_MB}M`,
    ]);
  }
  return {
    id,
    dir,
    onedDir: `${LOCATION}/0/${id}`,
    domain: `one-bk${id}`,
    repo,
    disk: (n) => join(dir, `disk.${n}`),
  };
}

async function startVm(vm: Vm, formats: Array<'qcow2' | 'raw'>): Promise<TestDomain> {
  await destroyIfRunning(vm.domain);
  const d = await startDomain(
    vm.domain,
    formats.map((format, i) => ({ target: `vd${String.fromCharCode(97 + i)}`, path: vm.disk(i), format })),
    vm.dir,
  );
  domains.push(d);
  return d;
}

function prepare(
  vm: Vm,
  r: Partial<BackupPrepareRequest> & { disks: BackupPrepareRequest['disks'] },
): Promise<BackupPrepareResponse> {
  return call(client.backupPrepare.bind(client), {
    vmDir: vm.onedDir,
    vmId: vm.id,
    domain: vm.domain,
    live: true,
    mode: 'FULL',
    backupId: 0,
    parentId: -1,
    freeze: 'NONE',
    vmXml: `<VM><ID>${vm.id}</ID></VM>`,
    ...r,
  });
}

function finish(vm: Vm, live = true): Promise<unknown> {
  return call(client.backupFinish.bind(client), {
    vmDir: vm.onedDir,
    domain: vm.domain,
    live,
    failed: false,
  });
}

async function sourceOf(domain: string, target: string): Promise<string> {
  const out = await virsh('domblklist', domain);
  const line = out.split('\n').find((l) => l.trim().startsWith(`${target} `));
  return line?.trim().split(/\s+/)[1] ?? '';
}

const inc = (n: number): Pick<BackupPrepareRequest, 'mode' | 'backupId' | 'parentId'> => ({
  mode: 'INCREMENT',
  backupId: n,
  parentId: n - 1,
});

beforeAll(async () => {
  await ensureLibvirt();
  base = await mkdtemp(join(tmpdir(), 'live-backup-'));
  // QEMU runs as libvirt-qemu: it must reach the disks.
  await chmod(base, 0o755);
  const pki = await makePki(join(base, 'x'));
  root = join(base, 'datastores');
  await mkdir(join(root, '0'), { recursive: true });
  const config = parseAgentConfig(
    {
      name: AGENT_NAME,
      listen: '127.0.0.1:0',
      roots: [{ location: LOCATION, path: root }],
      tls: pkiFiles(pki.dir, AGENT_NAME),
      libvirt: { uri: LIBVIRT_URI },
    },
    'test config',
  );
  agent = await startAgent(config, pino({ level: process.env['BACKUP_TEST_LOG'] ?? 'silent' }));
  client = agentClient(agent.port, pki.dir);
}, 60_000);

afterAll(async () => {
  for (const d of domains) await d.destroy();
  client?.close();
  await agent?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

describe('FULL', () => {
  it('powered off: a converted copy of each disk and vm.xml in base64; post removes backup/', async () => {
    const vm = await newVm([{ format: 'qcow2' }, { format: 'raw' }]);
    await qemuIo(vm.disk(0), 'qcow2', 'write -P 0x11 1M 2M');
    await qemuIo(vm.disk(1), 'raw', 'write -P 0x12 40M 1M');
    const xml = `<VM><ID>${vm.id}</ID><NAME>${'x'.repeat(300)}</NAME></VM>`;
    const r = await prepare(vm, {
      live: false,
      vmXml: xml,
      disks: [
        { diskId: 0, target: 'vda' },
        { diskId: 1, target: 'vdb' },
      ],
    });
    expect(r.method).toBe('convert');
    expect(r.disks.map((d) => [d.path, d.type])).toEqual([
      [`${vm.onedDir}/backup/disk.0.0`, 'FULL'],
      [`${vm.onedDir}/backup/disk.1.0`, 'FULL'],
    ]);
    const vmXml = await readFile(join(vm.dir, 'backup', 'vm.xml'), 'utf8');
    expect(vmXml.split('\n').every((l) => l.length <= 60)).toBe(true);
    expect(Buffer.from(vmXml, 'base64').toString()).toBe(xml);
    for (const n of [0, 1]) {
      const expected = join(vm.repo, `expected.${n}.raw`);
      await snapshotContent(vm.disk(n), n === 0 ? 'qcow2' : 'raw', expected);
      expect(await restoreMatches([join(vm.dir, 'backup', `disk.${n}.0`)], expected)).toBe(true);
    }
    await finish(vm, false);
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
    expect(existsSync(join(vm.dir, 'tmp'))).toBe(false);
  }, 60_000);

  it('live: the base is copied under a temporary overlay; post commits it back onto the original disk', async () => {
    const vm = await newVm([{ format: 'qcow2' }, { format: 'raw' }, { format: 'qcow2' }]);
    const dom = await startVm(vm, ['qcow2', 'raw', 'qcow2']);
    const original = [await sourceOf(vm.domain, 'vda'), await sourceOf(vm.domain, 'vdb')];
    await dom.write('vda', 0x21, 4 * MIB, 2 * MIB);
    await dom.write('vdb', 0x22, 10 * MIB, MIB);
    const expected = [join(vm.repo, 'e0.raw'), join(vm.repo, 'e1.raw')];
    await snapshotContent(vm.disk(0), 'qcow2', expected[0] ?? '');
    await snapshotContent(vm.disk(1), 'raw', expected[1] ?? '');
    const r = await prepare(vm, {
      freeze: 'AGENT', // no guest agent in the test domain: falls back to suspend
      disks: [
        { diskId: 0, target: 'vda' },
        { diskId: 1, target: 'vdb' },
      ],
    });
    expect(r.method).toBe('overlay');
    expect(await dom.state()).toBe('running');
    expect(await sourceOf(vm.domain, 'vda')).toBe(join(vm.dir, 'tmp', 'overlay_0.qcow2'));
    expect(await sourceOf(vm.domain, 'vdc')).toBe(vm.disk(2));
    // The guest writes on while the backup is taken: not in the backup, but kept by the commit.
    await dom.write('vda', 0x23, 20 * MIB, MIB);
    for (const n of [0, 1]) {
      expect(await restoreMatches([join(vm.dir, 'backup', `disk.${n}.0`)], expected[n] ?? '')).toBe(true);
    }
    await finish(vm);
    expect([await sourceOf(vm.domain, 'vda'), await sourceOf(vm.domain, 'vdb')]).toEqual(original);
    expect(existsSync(join(vm.dir, 'tmp'))).toBe(false);
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
    expect(await virsh('domstate', vm.domain)).toMatch(/running/);
    await dom.flush('vda');
    const after = join(vm.repo, 'after.raw');
    await snapshotContent(vm.disk(0), 'qcow2', after);
    await qemuIo(after, 'raw', 'read -P 0x21 4M 2M').then(async () => {
      const { stdout } = await runTool('qemu-io', ['-r', '-f', 'raw', '-c', 'read -P 0x23 20M 1M', after]);
      expect(stdout).not.toMatch(/Pattern verification failed/);
    });
  }, 120_000);

  it('a target left in backup/ and tmp/ by an earlier run does not stop the next backup (FULL, INCREMENT, FULL again)', async () => {
    const vm = await newVm([{ format: 'qcow2' }]);
    const dom = await startVm(vm, ['qcow2']);
    await dom.write('vda', 0x31, 0, MIB);
    await mkdir(join(vm.dir, 'backup'), { recursive: true });
    await mkdir(join(vm.dir, 'tmp'), { recursive: true });
    await writeFile(join(vm.dir, 'backup', 'disk.0.0'), 'stale');
    await writeFile(join(vm.dir, 'tmp', 'overlay_0.qcow2'), 'stale');
    const expected = join(vm.repo, 'e.raw');
    await snapshotContent(vm.disk(0), 'qcow2', expected);
    for (const mode of [{}, inc(0), {}]) {
      await prepare(vm, { ...mode, disks: [{ diskId: 0, target: 'vda' }] });
      expect(await restoreMatches([join(vm.dir, 'backup', 'disk.0.0')], expected)).toBe(true);
      await finish(vm);
    }
    expect(await sourceOf(vm.domain, 'vda')).toBe(vm.disk(0));
  }, 120_000);
});

/** Writes between backups: [pattern, offset MiB, length KiB] or a zeroed range (pattern -1). */
const STEPS: ReadonlyArray<ReadonlyArray<readonly [number, number, number]>> = [
  [
    [0x41, 0, 2048],
    [0x42, 30, 1024],
  ],
  [
    [0x43, 1, 512],
    [0x44, 50, 256],
  ],
  [
    [-1, 30, 512],
    [0x45, 40, 1024],
  ],
  [[0x46, 60, 2048]],
];
const written = (step: number): number => (STEPS[step] ?? []).reduce((n, [, , kib]) => n + kib * 1024, 0);

async function chainTest(live: (step: number) => boolean): Promise<void> {
  // A second disk that is not backed up: backup='no' and checkpoint='no' for it.
  const vm = await newVm([{ format: 'qcow2' }, { format: 'raw' }]);
  let dom: TestDomain | undefined;
  const chain: string[] = [];
  for (let step = 0; step < STEPS.length; step++) {
    const isLive = live(step);
    if (isLive && !dom) dom = await startVm(vm, ['qcow2', 'raw']);
    if (!isLive && dom) {
      await dom.destroy();
      dom = undefined;
    }
    for (const [pattern, offMb, kib] of STEPS[step] ?? []) {
      const off = offMb * MIB;
      if (dom)
        await (pattern < 0
          ? dom.writeZeroes('vda', off, kib * 1024)
          : dom.write('vda', pattern, off, kib * 1024));
      else
        await qemuIo(
          vm.disk(0),
          'qcow2',
          pattern < 0 ? `write -z ${off} ${kib}k` : `write -P ${pattern} ${off} ${kib}k`,
        );
    }
    const expected = join(vm.repo, `expected.${step}.raw`);
    await snapshotContent(vm.disk(0), 'qcow2', expected);
    const r = await prepare(vm, { ...inc(step), live: isLive, disks: [{ diskId: 0, target: 'vda' }] });
    expect(r.method).toBe(isLive ? 'push' : 'bitmap');
    const d = r.disks[0];
    expect(d?.type).toBe(step === 0 ? 'FULL' : 'INCREMENT');
    expect(d?.newChainReason).toBe('');
    const file = join(vm.dir, 'backup', `disk.0.${step}`);
    if (step > 0) {
      const info = JSON.parse((await runTool('qemu-img', ['info', '--output=json', file])).stdout) as Record<
        string,
        unknown
      >;
      expect(info['backing-filename']).toBe(`disk.0.${step - 1}`);
      // Close to the data written, far from the disk size.
      expect((await stat(file)).blocks * 512).toBeLessThan(written(step) + INCREMENT_SLACK);
    }
    chain.push(await keep(file, vm.repo, step));
    await finish(vm, isLive);
    expect(await restoreMatches(chain, expected)).toBe(true);
    if (isLive) {
      // The chain keeps the parent's checkpoint and the new one; older ones are dropped.
      const names = (await virsh('checkpoint-list', vm.domain, '--name')).split('\n').filter((l) => l.trim());
      const want = step === 0 ? [0] : [step - 1, step];
      expect(names.map((n) => n.trim()).sort()).toEqual(want.map((n) => `one-${vm.id}-${n}`));
    } else {
      // Powered off, the same holds for the qcow2 bitmaps.
      const info = JSON.parse((await runTool('qemu-img', ['info', '--output=json', vm.disk(0)])).stdout) as {
        'format-specific': { data: { bitmaps?: Array<{ name: string }> } };
      };
      const names = (info['format-specific'].data.bitmaps ?? []).map((b) => b.name).sort();
      const want = step === 0 ? [0] : [step - 1, step];
      expect(names).toEqual(want.map((n) => `one-${vm.id}-${n}`));
    }
  }
  if (dom) {
    expect(await sourceOf(vm.domain, 'vda')).toBe(vm.disk(0));
    await dom.destroy();
  }
}

describe('INCREMENT (CBT): FULL → INCREMENT × 3, each restored point matches', () => {
  it('live: checkpoints one-<vm>-<n> and push backup-begin', () => chainTest(() => true), 180_000);
  it('powered off: qcow2 bitmaps and qemu-nbd', () => chainTest(() => false), 120_000);
  it(
    'mixed: live, then powered off (the bitmaps libvirt left in the qcow2 carry on)',
    () => chainTest((step) => step < 2),
    180_000,
  );
});

describe('a missing parent starts a new full chain, which still restores when rebased onto the old one', () => {
  for (const live of [true, false]) {
    it(
      live ? 'live: checkpoint gone' : 'powered off: bitmap gone',
      async () => {
        const vm = await newVm([{ format: 'qcow2' }]);
        const dom = live ? await startVm(vm, ['qcow2']) : undefined;
        const write = async (pattern: number, off: number, len: number): Promise<void> => {
          if (dom)
            await (pattern < 0 ? dom.writeZeroes('vda', off, len) : dom.write('vda', pattern, off, len));
          else
            await qemuIo(
              vm.disk(0),
              'qcow2',
              pattern < 0 ? `write -z ${off} ${len}` : `write -P ${pattern} ${off} ${len}`,
            );
        };
        const chain: string[] = [];
        const backup = async (step: number): Promise<BackupPrepareResponse> => {
          const r = await prepare(vm, { ...inc(step), live, disks: [{ diskId: 0, target: 'vda' }] });
          chain.push(await keep(join(vm.dir, 'backup', `disk.0.${step}`), vm.repo, step));
          await finish(vm, live);
          return r;
        };
        await write(0x51, 0, MIB);
        await backup(0);
        // Data in increment 1 that the guest then zeroes: the new chain's full must not let a
        // restore read it back through its backing file.
        await write(0x52, 8 * MIB, 2 * MIB);
        await backup(1);
        await write(-1, 8 * MIB, 2 * MIB);
        await write(0x53, 16 * MIB, MIB);
        if (dom) await virsh('checkpoint-delete', vm.domain, `one-${vm.id}-1`);
        else await runTool('qemu-img', ['bitmap', '--remove', vm.disk(0), `one-${vm.id}-1`]);
        const expected = join(vm.repo, 'expected.raw');
        await snapshotContent(vm.disk(0), 'qcow2', expected);
        const r = await backup(2);
        expect(r.disks[0]?.type).toBe('FULL');
        expect(r.disks[0]?.newChainReason).toMatch(new RegExp(`one-${vm.id}-1 not found`));
        expect(await restoreMatches(chain, expected)).toBe(true);
        // ... and the new chain goes on with increments.
        await write(0x54, 24 * MIB, MIB);
        const expected3 = join(vm.repo, 'expected3.raw');
        await snapshotContent(vm.disk(0), 'qcow2', expected3);
        expect((await backup(3)).disks[0]?.type).toBe('INCREMENT');
        expect(await restoreMatches(chain, expected3)).toBe(true);
        await dom?.destroy();
      },
      120_000,
    );
  }
});

describe('a backup oned never recorded (its checkpoint is left) is taken again', () => {
  it('live: the stale checkpoint with the new id is deleted and the increment still holds every change since the parent', async () => {
    const vm = await newVm([{ format: 'qcow2' }]);
    const dom = await startVm(vm, ['qcow2']);
    const chain: string[] = [];
    await dom.write('vda', 0x81, 0, MIB);
    await prepare(vm, { ...inc(0), disks: [{ diskId: 0, target: 'vda' }] });
    chain.push(await keep(join(vm.dir, 'backup', 'disk.0.0'), vm.repo, 0));
    await finish(vm);
    await dom.write('vda', 0x82, 4 * MIB, MIB);
    // Backup 1 runs, but oned does not record it (the datastore upload failed): LAST_INCREMENT_ID stays 0.
    await prepare(vm, { ...inc(1), disks: [{ diskId: 0, target: 'vda' }] });
    await finish(vm);
    expect(await virsh('checkpoint-list', vm.domain, '--name')).toMatch(new RegExp(`one-${vm.id}-1`));
    await dom.write('vda', 0x83, 8 * MIB, MIB);
    const expected = join(vm.repo, 'e.raw');
    await snapshotContent(vm.disk(0), 'qcow2', expected);
    const r = await prepare(vm, { ...inc(1), disks: [{ diskId: 0, target: 'vda' }] });
    expect(r.disks[0]?.type).toBe('INCREMENT');
    chain.push(await keep(join(vm.dir, 'backup', 'disk.0.1'), vm.repo, 1));
    await finish(vm);
    // Both writes since backup 0 are in the retaken increment.
    expect(await restoreMatches(chain, expected)).toBe(true);
    await dom.destroy();
  }, 120_000);
});

describe('faults', () => {
  it('a raw disk in INCREMENT mode: one line naming the disk; nothing left', async () => {
    const vm = await newVm([{ format: 'raw' }]);
    const f = await failure(prepare(vm, { ...inc(0), live: false, disks: [{ diskId: 0, target: 'vda' }] }));
    expect(f.reason).toBe('INVALID_ARGUMENT');
    expect(f.message).toMatch(/disk 0 .* is raw; incremental backups \(CBT\) need qcow2 disks$/);
    expect(f.message).not.toMatch(/\n/);
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
    await startVm(vm, ['raw']);
    const g = await failure(prepare(vm, { ...inc(0), disks: [{ diskId: 0, target: 'vda' }] }));
    expect(g.message).toMatch(new RegExp(`disk 0 \\(vda\\) of one-bk${vm.id} is raw; .*need qcow2`));
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
    expect(existsSync(join(vm.dir, 'tmp'))).toBe(false);
  }, 60_000);

  it('an unknown domain (the live hook for a VM that is not running): DOMAIN_NOT_FOUND, nothing made', async () => {
    const vm = await newVm([{ format: 'qcow2' }]);
    const f = await failure(prepare(vm, { disks: [{ diskId: 0, target: 'vda' }] }));
    expect(f.reason).toBe('DOMAIN_NOT_FOUND');
    expect(f.message).toMatch(new RegExp(`one-bk${vm.id}`));
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
  });

  it("a TARGET that is not the VM directory's disk.<id> is refused, not copied", async () => {
    const vm = await newVm([{ format: 'qcow2' }, { format: 'qcow2' }]);
    const dom = await startVm(vm, ['qcow2', 'qcow2']);
    const f = await failure(prepare(vm, { disks: [{ diskId: 0, target: 'vdb' }] }));
    expect(f.reason).toBe('INVALID_ARGUMENT');
    expect(f.message).toMatch(/disk vdb of domain one-bk\d+ is .*\/disk\.1, not disk\.0 of the VM directory/);
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
    expect(await sourceOf(vm.domain, 'vda')).toBe(vm.disk(0));
    await dom.destroy();
  }, 60_000);

  it('bad requests name the field', async () => {
    const vm = await newVm([{ format: 'qcow2' }]);
    expect(
      (await failure(prepare(vm, { mode: 'SNAP', disks: [{ diskId: 0, target: 'vda' }] }))).message,
    ).toMatch(/mode must be one of FULL, INCREMENT/);
    expect(
      (await failure(prepare(vm, { backupId: 3, disks: [{ diskId: 0, target: 'vda' }] }))).message,
    ).toMatch(/backup_id 3 and parent_id -1 do not fit mode FULL/);
    expect((await failure(prepare(vm, { disks: [{ diskId: 5, target: 'vda' }] }))).reason).toBe('NOT_FOUND');
    expect(
      (await failure(prepare(vm, { vmDir: '/etc', disks: [{ diskId: 0, target: 'vda' }] }))).reason,
    ).toBe('PATH_OUTSIDE_ROOTS');
  });

  it('backup_cancel during a live backup: job aborted, partial files removed, VM on its original disks', async () => {
    const vm = await newVm([{ format: 'qcow2', sizeMb: 2048 }]);
    // Enough data that the copy takes a while (written before the VM starts: fast).
    await qemuIo(vm.disk(0), 'qcow2', 'write -P 0x61 0 1536M');
    const dom = await startVm(vm, ['qcow2']);
    const original = await sourceOf(vm.domain, 'vda');
    const running = prepare(vm, { disks: [{ diskId: 0, target: 'vda' }] }).then(
      () => 'finished',
      (err: Error) => err.message,
    );
    // Cancel once the backup is under way (the guest is on the overlay and the copy has begun).
    const deadline = Date.now() + 30_000;
    while (!existsSync(join(vm.dir, 'backup', 'disk.0.0'))) {
      if (Date.now() > deadline) throw new Error('the backup never started copying');
      await new Promise((r) => setTimeout(r, 20));
    }
    const c = await call(client.backupCancel.bind(client), { vmDir: vm.onedDir, domain: vm.domain });
    expect(c.running).toBe(true);
    expect(await running).toMatch(/cancelled by backup_cancel/);
    expect(await sourceOf(vm.domain, 'vda')).toBe(original);
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
    expect(existsSync(join(vm.dir, 'tmp'))).toBe(false);
    expect(await dom.state()).toBe('running');
    // A cancel with nothing running succeeds and says so.
    expect(
      (await call(client.backupCancel.bind(client), { vmDir: vm.onedDir, domain: vm.domain })).running,
    ).toBe(false);
    await dom.destroy();
  }, 120_000);
});
