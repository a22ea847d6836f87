// Backup hooks end to end, as oned runs them: the installed shims (both argument forms), the
// coordinator and a real agent process over mutual TLS, with a real running TCG domain. Also the
// agent killed (SIGKILL) in the middle of a live backup, and backup_cancel through the backup
// datastore driver.
import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { vmXml, type VmFixture } from '../cli/src/demo/fake-oned/fixtures.js';
import { expectOk, expectOneLineFailure } from './support/assertions.js';
import { keep, restoreMatches, snapshotContent } from './support/backup-chain.js';
import { appearsWhile } from './support/files.js';
import {
  LIBVIRT_URI,
  type TestDomain,
  destroyIfRunning,
  diskSource,
  ensureLibvirt,
  startDomain,
} from './support/libvirt.js';
import { MIB } from '../common/src/units.js';

const run = promisify(execFile);
const HOST = 'host01';
let stack: Stack;
let vmSeq = 300;
const domains: TestDomain[] = [];

const tm = (action: string, args: string[], stdin: string): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc', action, args, stdin);

interface Vm {
  id: number;
  onedDir: string;
  dir: string;
  domain: string;
  repo: string;
  disk: string;
  xml(config: Record<string, string | number>, extra?: Partial<VmFixture>): string;
}

async function newVm(format: 'qcow2' | 'raw', sizeMb = 64, fill?: string): Promise<Vm> {
  const id = vmSeq++;
  const onedDir = `${ONED_DATASTORE_LOCATION}/0/${id}`;
  const dir = stack.localPath(HOST, onedDir);
  await mkdir(dir, { recursive: true });
  const disk = join(dir, 'disk.0');
  await runTool('qemu-img', ['create', '-q', '-f', format, disk, `${sizeMb}M`]);
  if (fill) await runTool('qemu-io', ['-f', format, '-c', fill, disk]);
  const repo = join(stack.baseDir, 'repo', String(id));
  await mkdir(repo, { recursive: true });
  const domain = `one-bk${id}`;
  return {
    id,
    onedDir,
    dir,
    domain,
    repo,
    disk,
    xml: (config, extra = {}) =>
      vmXml({
        id,
        deployId: domain,
        lcmState: 69,
        disks: [{ diskId: 0, imageId: 0, format, tmMad: 'grpc', size: sizeMb, target: 'vda' }],
        history: [{ hostname: HOST, dsId: 0, tmMad: 'grpc' }],
        backupConfig: config,
        ...extra,
      }),
  };
}

async function start(vm: Vm, format: 'qcow2' | 'raw'): Promise<TestDomain> {
  await destroyIfRunning(vm.domain);
  const d = await startDomain(vm.domain, [{ target: 'vda', path: vm.disk, format }], vm.dir);
  domains.push(d);
  return d;
}

/** OpenNebula's six arguments, or the guide's five. */
const args6 = (vm: Vm): string[] => [`${HOST}:${vm.onedDir}`, '0', vm.domain, '-', String(vm.id), '0'];
const args5 = (vm: Vm): string[] => [`${HOST}:${vm.onedDir}`, '0', vm.domain, String(vm.id), '0'];

/**
 * Runs `action` again while the coordinator finds the (restarted) agent unreachable: its channel
 * reconnects with gRPC's backoff, and each attempt already waits through the coordinator's own
 * capped retries, so no pause is added here. Oned would simply run the next backup later.
 */
async function untilReachable(action: () => Promise<ActionRun>): Promise<ActionRun> {
  let run = await action();
  for (let i = 0; i < 10 && /is unreachable/.test(run.stderr); i++) run = await action();
  return run;
}

beforeAll(async () => {
  await ensureLibvirt();
  stack = await Stack.start({ hosts: ['frontend', HOST] });
  // QEMU runs as libvirt-qemu: it must reach the disks.
  await chmod(stack.baseDir, 0o755);
}, 120_000);

afterAll(async () => {
  for (const d of domains) await d.destroy();
  await stack?.stop();
});

describe('backup hooks through the shims', () => {
  it('prebackup_live + postbackup_live (6 arguments): FULL under an overlay, committed back', async () => {
    const vm = await newVm('qcow2');
    const dom = await start(vm, 'qcow2');
    await dom.write('vda', 0x71, 2 * MIB, 3 * MIB);
    const expected = join(vm.repo, 'e.raw');
    await snapshotContent(vm.disk, 'qcow2', expected);
    const xml = vm.xml({ MODE: 'FULL', FS_FREEZE: 'SUSPEND' });
    expectOk(await tm('prebackup_live', args6(vm), xml));
    expect(await diskSource(vm.domain, 'vda')).toBe(join(vm.dir, 'tmp', 'overlay_0.qcow2'));
    expect(await restoreMatches([join(vm.dir, 'backup', 'disk.0.0')], expected)).toBe(true);
    expect(existsSync(join(vm.dir, 'backup', 'vm.xml'))).toBe(true);
    expectOk(await tm('postbackup_live', args6(vm), xml));
    expect(await diskSource(vm.domain, 'vda')).toBe(vm.disk);
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
    expect(existsSync(join(vm.dir, 'tmp'))).toBe(false);
    expect(await dom.state()).toBe('running');
    await dom.destroy();
  }, 120_000);

  it('pre_backup + post_backup (5 arguments), INCREMENT powered off: ids from LAST_INCREMENT_ID', async () => {
    const vm = await newVm('qcow2', 64, 'write -P 0x72 0 4M');
    const chain: string[] = [];
    for (const [last, fill] of [
      [-1, ''],
      [0, 'write -P 0x73 8M 512k'],
      [1, 'write -z 0 1M'],
    ] as const) {
      if (fill) await runTool('qemu-io', ['-f', 'qcow2', '-c', fill, vm.disk]);
      const expected = join(vm.repo, `e${last}.raw`);
      await snapshotContent(vm.disk, 'qcow2', expected);
      const xml = vm.xml({ MODE: 'INCREMENT', LAST_INCREMENT_ID: last }, { lcmState: 70 });
      expectOk(await tm('pre_backup', args5(vm), xml));
      chain.push(await keep(join(vm.dir, 'backup', `disk.0.${last + 1}`), vm.repo, last + 1));
      expectOk(await tm('post_backup', args5(vm), xml));
      expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
      expect(await restoreMatches(chain, expected)).toBe(true);
    }
  }, 120_000);

  it('a failed pre (raw disk, CBT) is one line for oned; post with BACKUP_RESULT=FAILURE still exits 0', async () => {
    const vm = await newVm('raw');
    const xml = vm.xml({ MODE: 'INCREMENT', LAST_INCREMENT_ID: -1 }, { lcmState: 70 });
    expectOneLineFailure(
      await tm('prebackup', args6(vm), xml),
      /is raw; incremental backups \(CBT\) need qcow2/,
    );
    const post = await tm('postbackup', args6(vm), `${xml}<BACKUP_RESULT>FAILURE</BACKUP_RESULT>`);
    expectOk(post);
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
  }, 60_000);

  it('backup_cancel (datastore grpc_backup and tm) during prebackup_live: VM back on its disk', async () => {
    const vm = await newVm('qcow2', 2048, 'write -P 0x74 0 1536M');
    const dom = await start(vm, 'qcow2');
    const xml = vm.xml({ MODE: 'FULL' });
    const pre = tm('prebackup_live', args6(vm), xml);
    expect(await appearsWhile(join(vm.dir, 'backup', 'disk.0.0'), pre)).toBe(true);
    const cancel = await runAction(
      stack.remotesDir,
      'datastore',
      'grpc_backup',
      'backup_cancel',
      [`${HOST}:${vm.onedDir}`, vm.domain],
      xml,
    );
    expectOk(cancel);
    expect(cancel.stderr).toMatch(/backup aborted/);
    expectOneLineFailure(await pre, /cancelled by backup_cancel/);
    expect(await diskSource(vm.domain, 'vda')).toBe(vm.disk);
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
    expect(existsSync(join(vm.dir, 'tmp'))).toBe(false);
    expect(await dom.state()).toBe('running');
    const again = await tm('backup_cancel', [`${HOST}:${vm.onedDir}`, vm.domain], xml);
    expectOk(again);
    expect(again.stderr).toMatch(/no backup was running/);
    await dom.destroy();
  }, 120_000);

  it('agent killed (SIGKILL) in the middle of a live backup: the VM runs on; the next backup works', async () => {
    const vm = await newVm('qcow2', 512, 'write -P 0x75 0 384M');
    const dom = await start(vm, 'qcow2');
    const xml = vm.xml({ MODE: 'FULL' });
    const pre = tm('prebackup_live', args6(vm), xml);
    expect(await appearsWhile(join(vm.dir, 'backup', 'disk.0.0'), pre)).toBe(true);
    const pid = stack.pids()[`agent-${HOST}`];
    expect(pid).toBeGreaterThan(0);
    process.kill(pid ?? 0, 'SIGKILL');
    expect((await pre).code).not.toBe(0);
    // The guest runs on (on the overlay) and keeps writing.
    expect(await dom.state()).toBe('running');
    await dom.write('vda', 0x76, 100 * MIB, MIB);
    await stack.startAgent(HOST);
    const expected = join(vm.repo, 'e.raw');
    // What the guest sees now (overlay over the disk), as the next backup must hold it.
    const top = await diskSource(vm.domain, 'vda');
    await snapshotContent(top, 'qcow2', expected);
    const next = await untilReachable(() => tm('prebackup_live', args6(vm), xml));
    expectOk(next);
    expect(await restoreMatches([join(vm.dir, 'backup', 'disk.0.0')], expected)).toBe(true);
    expectOk(await tm('postbackup_live', args6(vm), xml));
    expect(await diskSource(vm.domain, 'vda')).toBe(vm.disk);
    expect(existsSync(join(vm.dir, 'tmp'))).toBe(false);
    // The disk itself holds what the guest wrote before and after the kill.
    await dom.flush('vda');
    for (const [p, off] of [
      [0x75, 0],
      [0x76, 100 * MIB],
    ] as const) {
      const { stdout } = await runTool('qemu-io', [
        '-r',
        '-U',
        '-f',
        'qcow2',
        '-c',
        `read -P ${p} ${off} 1M`,
        vm.disk,
      ]);
      expect(stdout).not.toMatch(/Pattern verification failed/);
    }
    await dom.destroy();
  }, 180_000);

  it('agent killed during a push-mode backup job (INCREMENT): the job and checkpoint it left do not stop the next one', async () => {
    const vm = await newVm('qcow2', 256, 'write -P 0x77 0 64M');
    const dom = await start(vm, 'qcow2');
    const xml = vm.xml({ MODE: 'INCREMENT', LAST_INCREMENT_ID: -1 });
    const pre = tm('prebackup_live', args6(vm), xml);
    // Kill the agent as soon as libvirt starts the backup job: libvirt creates the job's target
    // file inside backup-begin. The virsh the agent runs is not killed with it, so the job starts
    // (and runs on in QEMU) either way. The kill lands inside backup-begin whatever the disk's size,
    // so the disk is small: every later step (the guest write, the next backup, the restore) costs
    // in proportion to it, and on a busy machine a large one ran past the timeout.
    expect(await appearsWhile(join(vm.dir, 'backup', 'disk.0.0'), pre)).toBe(true);
    process.kill(stack.pids()[`agent-${HOST}`] ?? 0, 'SIGKILL');
    expect((await pre).code).not.toBe(0);
    expect(await dom.state()).toBe('running');
    await stack.startAgent(HOST);
    await dom.write('vda', 0x78, 200 * MIB, MIB);
    const expected = join(vm.repo, 'e.raw');
    await snapshotContent(vm.disk, 'qcow2', expected);
    const next = await untilReachable(() => tm('prebackup_live', args6(vm), xml));
    expectOk(next);
    expect(await restoreMatches([join(vm.dir, 'backup', 'disk.0.0')], expected)).toBe(true);
    expectOk(await tm('postbackup_live', args6(vm), xml));
    const { stdout } = await run('virsh', ['-c', LIBVIRT_URI, '-q', 'checkpoint-list', vm.domain, '--name']);
    expect(stdout.trim()).toBe(`one-${vm.id}-0`);
    await dom.destroy();
  }, 180_000);
});
