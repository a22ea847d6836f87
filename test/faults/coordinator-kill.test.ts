// Fault suite: the coordinator SIGKILLed in the middle of a driver call, FAULT_RUNS / 2 runs (10 by
// default), a clone between hosts, a VM directory move, an offline disk snapshot and a backup upload
// in turn, each killed at a different point. Then the coordinator starts again and recovers what
// the killed one left (coordinator/src/jobs/recover-unfinished.ts). Each run: the shim fails in one
// line (or the call had completed), the source is unchanged, nothing partial sits at a final path,
// a half-moved VM directory ends as exactly one copy, and oned's retry of the same call succeeds.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../../cli/src/demo/demo-images.js';
import { datastoreXml, vmXml, writeDatastoreXml, writeVmXml } from '../../cli/src/demo/fake-oned/fixtures.js';
import { runAction, type ActionRun } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION as LOC, Stack } from '../../cli/src/demo/stack.js';
import { runTool } from '../../common/src/tools/run-tool.js';
import { Journal } from '../../coordinator/src/journal/journal.js';
import { backupVm, fabricateBackup } from '../support/backup-repo.js';
import { unexpectedLines } from '../support/daemon-logs.js';
import { humanLines, imagesIdentical, layout, sha256File } from '../support/files.js';
import { filesUnder, stepBegun, sums } from './coordinator-kill-support.js';
import { jobAtLeast } from './support/receive-progress.js';

const RUNS = Math.max(4, Math.round(Number(process.env['FAULT_RUNS'] ?? 20) / 2));
const SYS = `${LOC}/0`;
const SOURCE = `${LOC}/1/coordkill0000000000000000000000aa`;
const IMAGE_MB = 8;
const BACKUP_DS = {
  id: 100,
  type: 3,
  dsMad: 'grpc_backup',
  tmMad: '-',
  template: { GRPC_BACKUP_HOST: 'backup01' },
};
const REPO = `${LOC}/100`;

let stack: Stack;
let sourceSum: string;
let reference: string;

const tm = (action: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc', action, args);
const local = (host: string, path: string): string => stack.localPath(host, path);

beforeAll(async () => {
  stack = await Stack.start({
    hosts: ['frontend', 'host01', 'host02', 'backup01'],
    dataRateLimit: 8 * MIB,
    deadlines: { controlMs: 5_000 },
  });
  await writeDatastoreXml(stack.fixturesDir, BACKUP_DS);
  const source = local('frontend', SOURCE);
  await makeImage(source, 'raw', IMAGE_MB, 0x51);
  await writePattern(source, 'raw', 0x52, MIB, (IMAGE_MB - 1) * MIB);
  sourceSum = await sha256File(source);
  reference = source;
  // The hosts' system datastores are monitored locally: mv carries the marker with the directory.
  for (const h of ['host01', 'host02']) {
    await mkdir(local(h, SYS), { recursive: true });
    await runTool('touch', [local(h, `${SYS}/.monitor`)]);
  }
}, 90_000);

afterAll(async () => {
  await stack?.stop();
});

interface Kind {
  name: string;
  /** Makes what the call needs; returns its argv (and stdin). */
  prepare(vm: number): Promise<{ args: string[]; stdin?: string }>;
  run(args: string[], stdin?: string): Promise<ActionRun>;
  /** Resolves at the point of the call where run `i` kills the coordinator. */
  killPoint(i: number): Promise<void>;
  /** After recovery, before the retry: throws when something is lost or half-written; the bytes lost. */
  checkAfterKill(vm: number): Promise<number>;
  /** After the retry succeeded. */
  checkAfterRetry(vm: number, r: ActionRun): Promise<void>;
}

const fraction = (i: number): number => (10 + ((i * 29) % 80)) / 100;

function diskXml(vm: number, format: 'raw' | 'qcow2', host: string) {
  return {
    id: vm,
    lcmState: 0,
    state: 8,
    disks: [{ diskId: 0, imageId: 3, source: SOURCE, format, tmMad: 'grpc', size: IMAGE_MB }],
    history: [{ hostname: host, dsId: 0, tmMad: 'grpc' }],
  };
}

const clone: Kind = {
  name: 'clone',
  async prepare(vm) {
    await writeVmXml(stack.fixturesDir, diskXml(vm, 'raw', 'host01'));
    return { args: [`frontend:${SOURCE}`, `host01:${SYS}/${vm}/disk.0`, `${vm}`, '1'] };
  },
  run: (args) => tm('clone', args),
  killPoint: (i) => jobAtLeast(stack, 'host01', 'Receive', fraction(i)),
  async checkAfterKill(vm) {
    const disk = local('host01', `${SYS}/${vm}/disk.0`);
    expect(filesUnder(local('host01', `${SYS}/${vm}`)).filter((f) => f !== 'disk.0')).toEqual([]);
    if (existsSync(disk)) expect(await sha256File(disk)).toBe(sourceSum);
    return (await sha256File(local('frontend', SOURCE))) === sourceSum ? 0 : IMAGE_MB * MIB;
  },
  async checkAfterRetry(vm) {
    expect(await sha256File(local('host01', `${SYS}/${vm}/disk.0`))).toBe(sourceSum);
    expect(layout(local('host01', `${SYS}/${vm}`))).toEqual(['disk.0']);
  },
};

const mv: Kind = {
  name: 'mv',
  async prepare(vm) {
    await writeVmXml(stack.fixturesDir, diskXml(vm, 'raw', 'host02'));
    await mkdir(local('host01', `${SYS}/${vm}`), { recursive: true });
    await runTool('cp', ['--sparse=always', reference, local('host01', `${SYS}/${vm}/disk.0`)]);
    return { args: [`host01:${SYS}/${vm}`, `host02:${SYS}/${vm}`, `${vm}`, '0'] };
  },
  run: (args) => tm('mv', args),
  // Half the runs (the first among them) are killed once the copy is verified, before the source
  // is deleted (the marker step comes between): the half-moved directory; the others mid-copy.
  killPoint: (i) =>
    Math.floor(i / 4) % 2 === 0
      ? stepBegun(stack, 'setMonitorMarker')
      : jobAtLeast(stack, 'host02', 'Receive', fraction(i)),
  async checkAfterKill(vm) {
    const copies = ['host01', 'host02'].filter((h) => existsSync(local(h, `${SYS}/${vm}/disk.0`)));
    expect(copies, `copies of VM ${vm}'s directory`).toHaveLength(1);
    const [at] = copies as [string];
    expect(filesUnder(local(at, `${SYS}/${vm}`))).toEqual(['disk.0']);
    const other = at === 'host01' ? 'host02' : 'host01';
    expect(filesUnder(local(other, `${SYS}/${vm}`))).toEqual([]);
    return (await sha256File(local(at, `${SYS}/${vm}/disk.0`))) === sourceSum ? 0 : IMAGE_MB * MIB;
  },
  async checkAfterRetry(vm) {
    expect(existsSync(local('host01', `${SYS}/${vm}`))).toBe(false);
    expect(await sha256File(local('host02', `${SYS}/${vm}/disk.0`))).toBe(sourceSum);
  },
};

const snapshot: Kind = {
  name: 'snap_create',
  async prepare(vm) {
    await writeVmXml(stack.fixturesDir, diskXml(vm, 'qcow2', 'host01'));
    const disk = local('host01', `${SYS}/${vm}/disk.0`);
    await mkdir(local('host01', `${SYS}/${vm}`), { recursive: true });
    await runTool('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', reference, disk]);
    return { args: [`host01:${SYS}/${vm}/disk.0`, '0', `${vm}`, '0'] };
  },
  run: (args) => tm('snap_create', args),
  killPoint: () => stepBegun(stack, 'snapshotCreate'),
  async checkAfterKill(vm) {
    const disk = local('host01', `${SYS}/${vm}/disk.0`);
    await runTool('qemu-img', ['check', '-q', '-f', 'qcow2', disk]);
    return (await imagesIdentical(disk, 'qcow2', reference, 'raw')) ? 0 : IMAGE_MB * MIB;
  },
  async checkAfterRetry(vm) {
    const disk = local('host01', `${SYS}/${vm}/disk.0`);
    await runTool('qemu-img', ['check', '-q', '-f', 'qcow2', disk]);
    expect(await imagesIdentical(disk, 'qcow2', reference, 'raw')).toBe(true);
    expect(existsSync(local('host01', `${SYS}/${vm}/disk.0.snap/0`))).toBe(true);
  },
};

const backupSums = new Map<number, Record<string, string>>();
const backup: Kind = {
  name: 'backup',
  async prepare(vm) {
    const fixture = backupVm(vm, [{ diskId: 0, sizeMb: IMAGE_MB }]);
    const dir = local('host01', `${SYS}/${vm}`);
    await rm(dir, { recursive: true, force: true });
    await fabricateBackup(dir, fixture, [
      { diskId: 0, inc: 0, sizeMb: IMAGE_MB, dataMb: IMAGE_MB, pattern: 0x53 },
    ]);
    backupSums.set(vm, await sums(join(dir, 'backup')));
    const stdin = `<DS_DRIVER_ACTION_DATA>${datastoreXml(BACKUP_DS)}${vmXml(fixture)}</DS_DRIVER_ACTION_DATA>`;
    return { args: [`host01:${SYS}/${vm}`, '0', `one-${vm}`, '-', `${vm}`, '0'], stdin };
  },
  run: (args, stdin) => runAction(stack.remotesDir, 'datastore', 'grpc_backup', 'backup', args, stdin),
  killPoint: (i) => jobAtLeast(stack, 'backup01', 'ReceiveBackup', fraction(i)),
  async checkAfterKill(vm) {
    // Every backup on the server is whole (SHA256SUMS written last): none half-written.
    for (const id of layoutOf(local('backup01', `${REPO}/${vm}`))) completeBackup(vm, id);
    const now = await sums(local('host01', `${SYS}/${vm}/backup`));
    return JSON.stringify(now) === JSON.stringify(backupSums.get(vm)) ? 0 : IMAGE_MB * MIB;
  },
  async checkAfterRetry(vm, r) {
    const id = /^([0-9a-f]{12}) \d+ raw\n$/.exec(r.stdout)?.[1];
    expect(id, r.stdout).toBeDefined();
    completeBackup(vm, id ?? '');
  },
};

function layoutOf(dir: string): string[] {
  return existsSync(dir) ? layout(dir).filter((n) => !n.includes('/')) : [];
}

function completeBackup(vm: number, id: string): void {
  const dir = local('backup01', `${REPO}/${vm}/${id}`);
  const listed = readFileSync(join(dir, 'SHA256SUMS'), 'utf8');
  for (const [name, sum] of Object.entries(backupSums.get(vm) ?? {})) {
    if (name.startsWith('disk.')) expect(listed).toContain(`${sum}  ${name}`);
    expect(sha256FileSync(join(dir, name)), `${dir}/${name}`).toBe(sum);
  }
}

const sha256FileSync = (file: string): string =>
  createHash('sha256').update(readFileSync(file)).digest('hex');

const KINDS = [clone, mv, snapshot, backup];

interface Tally {
  runs: number;
  survived: number;
  completed: number;
  rolledForward: number;
  bytesLost: number;
}

describe('coordinator SIGKILL mid-action', () => {
  it(
    `${RUNS} runs (clone, mv, snap_create, backup in turn): one line, nothing lost or half-written, one copy, retry works`,
    async () => {
      const tally = new Map<string, Tally>(
        KINDS.map((k) => [k.name, { runs: 0, survived: 0, completed: 0, rolledForward: 0, bytesLost: 0 }]),
      );
      for (let i = 0; i < RUNS; i++) {
        const kind = KINDS[i % KINDS.length] as Kind;
        const t = tally.get(kind.name) as Tally;
        const vm = 300 + i;
        const { args, stdin } = await kind.prepare(vm);
        t.runs++;
        const first = kind.run(args, stdin);
        await kind.killPoint(i);
        await stack.restartCoordinator('SIGKILL');
        const r = await first;
        const what = `run ${i} (${kind.name}): ${r.stderr}`;
        if (r.code === 0) t.completed++;
        else expect(humanLines(r.stderr), what).toHaveLength(1);
        const note = await recoveryDone(vm);
        if (/rolled forward/.test(note)) t.rolledForward++;
        const lost = await kind.checkAfterKill(vm);
        t.bytesLost += lost;
        expect(lost, what).toBe(0);
        const retry = await kind.run(args, stdin);
        expect(retry.code, `${what}\nretry: ${retry.stderr}`).toBe(0);
        await kind.checkAfterRetry(vm, retry);
        t.survived++;
      }
      for (const [name, t] of tally) {
        console.log(
          `coordinator SIGKILL mid-${name}: ${t.runs} runs, ${t.survived} survived (${t.completed} completed before the kill, ${t.rolledForward} rolled forward at restart), ${t.bytesLost} bytes lost`,
        );
      }
      for (const t of tally.values()) expect(t.survived).toBe(t.runs);
      for (const log of stack.logFiles()) expect(unexpectedLines(log), log).toEqual([]);
      // The runs killed between mv's verified copy and its delete left both copies: recovery kept one.
      expect(tally.get('mv')?.rolledForward).toBeGreaterThan(0);
    },
    Math.max(600_000, RUNS * 20_000),
  );
});

describe('a half-moved VM directory at restart', () => {
  it('is rolled forward before the retry of oned, which then finds one copy and succeeds', async () => {
    const vm = 399;
    const { args } = await mv.prepare(vm);
    await mkdir(local('host02', `${SYS}/${vm}`), { recursive: true });
    await runTool('cp', ['--sparse=always', reference, local('host02', `${SYS}/${vm}/disk.0`)]);
    // What a coordinator killed between mv's verified copy and its delete leaves in its journal.
    await stack.restartCoordinator('SIGTERM', () => {
      const journal = new Journal(stack.journalPath);
      try {
        journal.beginCall({
          requestId: 'half-moved',
          kind: 'tm',
          driver: 'grpc',
          action: 'mv',
          args,
          vmId: vm,
        });
        const step = journal.beginStep('half-moved', {
          host: 'host02',
          rpc: 'receive',
          args: { destination: `${SYS}/${vm}` },
        });
        journal.endStep(step, { outcome: 'success', bytes: IMAGE_MB * MIB });
      } finally {
        journal.close();
      }
    });
    // oned's retry, at once: it waits for the recovery of its VM, then finds the move done.
    const retry = await mv.run(args);
    expect(retry.code, retry.stderr).toBe(0);
    expect(await recoveryDone(vm)).toMatch(
      /mv rolled forward: host02:\S+ was copied and verified before the stop; host01:\S+ deleted, one copy remains/,
    );
    await mv.checkAfterRetry(vm, retry);
  }, 60_000);
});

/**
 * Waits until the restarted coordinator has closed every call the killed one left running; returns
 * what recovery wrote for VM `vm`'s call ('' when the call had ended before the kill).
 */
async function recoveryDone(vm: number): Promise<string> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(stack.journalPath, { readonly: true });
  try {
    const running = db.prepare(`SELECT count(*) AS n FROM calls WHERE outcome = 'running'`);
    const deadline = Date.now() + 30_000;
    while ((running.get() as { n: number }).n > 0) {
      if (Date.now() > deadline) throw new Error('recovery did not close the killed call within 30 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const row = db
      .prepare(`SELECT error FROM calls WHERE vm_id = ? AND interrupted_at IS NOT NULL`)
      .get(vm) as { error: string } | undefined;
    return row?.error ?? '';
  } finally {
    db.close();
  }
}
