// The backup repository's agent RPCs (docs/backups.md#repository) between real agent processes
// over mutual TLS: ReceiveBackup (content, SHA256SUMS, ALREADY_EXISTS, cancel, either agent killed
// mid-upload, a full repository), ListBackup and RemoveBackups (shape and root confinement).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ONED_DATASTORE_LOCATION as LOC, Stack } from '../cli/src/demo/stack.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { StorageError } from '../common/src/errors.js';
import { appearsWhile, layout, pathGone, sha256File } from './support/files.js';
import { StackAgents, backupVm, fabricateBackup } from './support/backup-repo.js';

const BASE = `${LOC}/100`;
const SMALL_FS_MB = 24;
let stack: Stack;
let agents: StackAgents;
let smallFs: string;
/** host01's VM directories (oned's view) holding a fabricated backup/. */
const SMALL_VM = `${LOC}/0/7`;
const BIG_VM = `${LOC}/0/8`;
let bid = 0x100000000000;
const newBid = (): string => (bid++).toString(16);

const local = (host: string, path: string): string => stack.localPath(host, path);
const reasonOf = async (p: Promise<unknown>): Promise<StorageError> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
};
/** The backup01 entries of `<BASE>/<vm>`, dot-names included. */
const repoEntries = async (vm: number, host = 'backup01'): Promise<string[]> =>
  readdir(local(host, `${BASE}/${vm}`)).catch(() => []);

/** Runs `fn` with `host`'s agent stopped (SIGSTOP), always continuing it after. */
async function whileStopped<T>(host: string, fn: () => Promise<T>): Promise<T> {
  const pid = stack.pids()[`agent-${host}`] ?? 0;
  process.kill(pid, 'SIGSTOP');
  try {
    return await fn();
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

/** Whether `path` is gone within 20 s (a watch, no polling): the agent removes staging as the cancel lands. */
async function gone(path: string): Promise<boolean> {
  return pathGone(path, AbortSignal.timeout(20_000)).then(
    () => true,
    () => !existsSync(path),
  );
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('these tests mount a small tmpfs and need root');
  smallFs = await mkdtemp(join(tmpdir(), 'one-storage-backupfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SMALL_FS_MB}m`, 'tmpfs', smallFs]);
  await mkdir(join(smallFs, 'datastores'));
  stack = await Stack.start({
    hosts: ['host01', 'backup01', 'backup02'],
    hostDirs: { backup02: join(smallFs, 'datastores') },
  });
  agents = new StackAgents(stack);
  const small = [
    { diskId: 0, inc: 0, sizeMb: 64, dataMb: 8, pattern: 0x31 },
    { diskId: 2, inc: 0, sizeMb: 32, dataMb: 1, pattern: 0x32 },
  ];
  const smallDir = await fabricateBackup(local('host01', SMALL_VM), backupVm(7, small), small);
  // A file with holes in the middle and at the end: its SHA256SUMS line covers the zeros too.
  const sparse = await open(join(smallDir, 'disk.3.0'), 'w');
  await sparse.write(Buffer.alloc(4096, 0x5a), 0, 4096, 5 * 1024 * 1024);
  await sparse.truncate(16 * 1024 * 1024);
  await sparse.close();
  const big = [{ diskId: 0, inc: 0, sizeMb: 1024, dataMb: 768, pattern: 0x33 }];
  await fabricateBackup(local('host01', BIG_VM), backupVm(8, big), big);
}, 120_000);

afterAll(async () => {
  agents?.close();
  await stack?.stop();
  if (smallFs) {
    execFileSync('umount', [smallFs]);
    await rm(smallFs, { recursive: true, force: true });
  }
});

describe('ReceiveBackup', () => {
  it('stores the files as sent, SHA256SUMS that sha256sum -c accepts, and the size du -sm gives', async () => {
    const id = newBid();
    const r = await agents.send('host01', `${SMALL_VM}/backup`, 'backup01', `${BASE}/7/${id}`);
    const dir = local('backup01', `${BASE}/7/${id}`);
    const src = local('host01', `${SMALL_VM}/backup`);
    expect((await readdir(dir)).sort()).toEqual(['SHA256SUMS', 'disk.0.0', 'disk.2.0', 'disk.3.0', 'vm.xml']);
    const sums = await readFile(join(dir, 'SHA256SUMS'), 'utf8');
    const expected: string[] = [];
    for (const f of ['disk.0.0', 'disk.2.0', 'disk.3.0', 'vm.xml']) {
      expect(await sha256File(join(dir, f))).toBe(await sha256File(join(src, f)));
      expected.push(`${await sha256File(join(src, f))}  ${f}\n`);
    }
    expect(sums).toBe(expected.join(''));
    const check = await runTool('sha256sum', ['--strict', '-c', 'SHA256SUMS'], { cwd: dir });
    expect(check.stdout.trim().split('\n')).toEqual([
      'disk.0.0: OK',
      'disk.2.0: OK',
      'disk.3.0: OK',
      'vm.xml: OK',
    ]);
    // The holes stayed holes.
    expect((await stat(join(dir, 'disk.3.0'))).blocks * 512).toBeLessThan(1024 * 1024);
    const du = await runTool('du', ['-sm', dir]);
    expect(r.sizeMb).toBe(Number(du.stdout.split('\t')[0]));
    expect(r.files).toBe(4);
    expect(await repoEntries(7)).toEqual([id]);
  });

  it('refuses a backup directory that exists (ALREADY_EXISTS) and leaves it as it was', async () => {
    const id = newBid();
    await agents.send('host01', `${SMALL_VM}/backup`, 'backup01', `${BASE}/7/${id}`);
    const before = layout(local('backup01', `${BASE}/7/${id}`));
    const err = await reasonOf(agents.send('host01', `${SMALL_VM}/backup`, 'backup01', `${BASE}/7/${id}`));
    expect(err.reason).toBe('ALREADY_EXISTS');
    expect(err.message).toMatch(new RegExp(`backup01:${BASE}/7/${id}.*already exists`));
    expect(layout(local('backup01', `${BASE}/7/${id}`))).toEqual(before);
  });

  it('a cancelled call removes its staging directory and the <vmid>/ it made', async () => {
    const id = newBid();
    const staging = local('backup01', `${BASE}/8/.${id}.partial`);
    const ac = new AbortController();
    const call = agents.send('host01', `${BIG_VM}/backup`, 'backup01', `${BASE}/8/${id}`, ac.signal);
    call.catch(() => undefined);
    expect(await appearsWhile(staging, call)).toBe(true);
    await whileStopped('host01', async () => {
      ac.abort();
      await reasonOf(call);
      expect(await gone(staging)).toBe(true);
    });
    expect(await gone(local('backup01', `${BASE}/8`))).toBe(true);
    const listed = await agents.call('backup01', 'listBackup', {
      backupDir: `${BASE}/8/${id}`,
      withTpmState: false,
    });
    expect(listed.exists).toBe(false);
  }, 60_000);

  it('the receiving agent killed mid-upload: nothing visible; after a restart a retry succeeds and the leftover goes', async () => {
    const id = newBid();
    const staging = local('backup01', `${BASE}/8/.${id}.partial`);
    const call = agents.send('host01', `${BIG_VM}/backup`, 'backup01', `${BASE}/8/${id}`);
    call.catch(() => undefined);
    expect(await appearsWhile(staging, call)).toBe(true);
    await whileStopped('host01', async () => {
      process.kill(stack.pids()['agent-backup01'] ?? 0, 'SIGKILL');
      expect((await reasonOf(call)).reason).toBe('AGENT_UNAVAILABLE');
    });
    await stack.stopAgent('backup01'); // reaps the killed process
    await stack.startAgent('backup01');
    agents.forget('backup01');
    const listed = await agents.call('backup01', 'listBackup', {
      backupDir: `${BASE}/8/${id}`,
      withTpmState: false,
    });
    expect(listed.exists).toBe(false);
    expect(await repoEntries(8)).toEqual([`.${id}.partial`]);
    const retry = newBid();
    const r = await agents.send('host01', `${BIG_VM}/backup`, 'backup01', `${BASE}/8/${retry}`);
    expect(r.bytes).toBeGreaterThanOrEqual(768 * 1024 * 1024);
    expect(await repoEntries(8)).toEqual([retry]);
    await agents.call('backup01', 'removeBackups', { backupDirs: [`${BASE}/8/${retry}`] });
  }, 120_000);

  it('the sending agent killed mid-upload: TRANSFER_FAILED, nothing left; a retry succeeds', async () => {
    const id = newBid();
    const staging = local('backup01', `${BASE}/8/.${id}.partial`);
    const call = agents.send('host01', `${BIG_VM}/backup`, 'backup01', `${BASE}/8/${id}`);
    call.catch(() => undefined);
    expect(await appearsWhile(staging, call)).toBe(true);
    process.kill(stack.pids()['agent-host01'] ?? 0, 'SIGKILL');
    const err = await reasonOf(call);
    expect(err.reason).toBe('TRANSFER_FAILED');
    expect(err.message).toMatch(new RegExp(`receive backup backup01:${BASE}/8/${id} from host01: `));
    expect(existsSync(local('backup01', `${BASE}/8`))).toBe(false);
    await stack.stopAgent('host01'); // reaps the killed process
    await stack.startAgent('host01');
    agents.forget('host01');
    await agents.send('host01', `${BIG_VM}/backup`, 'backup01', `${BASE}/8/${id}`);
    expect(await repoEntries(8)).toEqual([id]);
    await agents.call('backup01', 'removeBackups', { backupDirs: [`${BASE}/8/${id}`] });
  }, 120_000);

  it('a full repository: NO_SPACE, and nothing of the backup is left', async () => {
    const id = newBid();
    const err = await reasonOf(agents.send('host01', `${BIG_VM}/backup`, 'backup02', `${BASE}/8/${id}`));
    expect(err.reason).toBe('NO_SPACE');
    expect(err.message).toMatch(new RegExp(`^receive backup backup02:${BASE}/8/${id} from host01: `));
    expect(layout(stack.datastoreDirs['backup02'] ?? '')).toEqual([]);
    // What fits still goes in.
    await agents.send('host01', `${SMALL_VM}/backup`, 'backup02', `${BASE}/7/${id}`);
    expect(await repoEntries(7, 'backup02')).toEqual([id]);
  }, 60_000);
});

describe('ListBackup', () => {
  it('lists the files (not SHA256SUMS) with sizes, and vm.xml as stored', async () => {
    const id = newBid();
    await agents.send('host01', `${SMALL_VM}/backup`, 'backup01', `${BASE}/7/${id}`);
    const r = await agents.call('backup01', 'listBackup', {
      backupDir: `${BASE}/7/${id}`,
      withTpmState: false,
    });
    expect(r.exists).toBe(true);
    expect(r.files.map((f) => f.name)).toEqual(['disk.0.0', 'disk.2.0', 'disk.3.0', 'vm.xml']);
    const disk0 = r.files[0];
    expect(disk0?.size).toBe((await readFile(local('host01', `${SMALL_VM}/backup/disk.0.0`))).length);
    expect(disk0?.allocated).toBeGreaterThan(8 * 1024 * 1024);
    expect(r.vmXml.toString()).toBe(await readFile(local('host01', `${SMALL_VM}/backup/vm.xml`), 'utf8'));
  });

  it.each([
    [`${BASE}/7`, 'INVALID_ARGUMENT', /is not <base path>\/<vm id>\/<backup id>/],
    [`${BASE}/x/abcdef123456`, 'INVALID_ARGUMENT', /is not <base path>/],
    [`${BASE}/7/ABCDEF123456`, 'INVALID_ARGUMENT', /is not <base path>/],
    [`${BASE}/7/../abcdef123456`, 'UNSAFE_PATH', /must not contain "\." or "\.\." components/],
    ['/etc/7/abcdef123456', 'PATH_OUTSIDE_ROOTS', /outside the datastore roots/],
  ])('refuses %s (%s)', async (backupDir, reason, message) => {
    const err = await reasonOf(agents.call('backup01', 'listBackup', { backupDir, withTpmState: false }));
    expect(err.reason).toBe(reason);
    expect(err.message).toMatch(message);
  });
});

describe('RemoveBackups', () => {
  it('removes backup directories and a <vmid>/ left empty; a repeat finds nothing to do', async () => {
    const [a, b] = [newBid(), newBid()];
    await agents.send('host01', `${SMALL_VM}/backup`, 'backup01', `${BASE}/9/${a}`);
    await agents.send('host01', `${SMALL_VM}/backup`, 'backup01', `${BASE}/9/${b}`);
    expect((await agents.call('backup01', 'removeBackups', { backupDirs: [`${BASE}/9/${a}`] })).removed).toBe(
      1,
    );
    expect(await repoEntries(9)).toEqual([b]);
    const both = { backupDirs: [`${BASE}/9/${a}`, `${BASE}/9/${b}`] };
    expect((await agents.call('backup01', 'removeBackups', both)).removed).toBe(1);
    expect(existsSync(local('backup01', `${BASE}/9`))).toBe(false);
    expect(existsSync(local('backup01', BASE))).toBe(true);
    expect((await agents.call('backup01', 'removeBackups', both)).removed).toBe(0);
  });

  it.each([
    [[`${BASE}/7`], 'INVALID_ARGUMENT'],
    [[`${BASE}/7/../7`], 'UNSAFE_PATH'],
    [[`${BASE}/7/../../100/7/abcdef123456`], 'UNSAFE_PATH'],
    [['/var/lib/one/7/abcdef123456'], 'PATH_OUTSIDE_ROOTS'],
    [[`${LOC}/abcdef123456`], 'INVALID_ARGUMENT'],
  ])('refuses %j (%s) and removes nothing, not even the valid paths beside it', async (paths, reason) => {
    const id = newBid();
    await agents.send('host01', `${SMALL_VM}/backup`, 'backup01', `${BASE}/7/${id}`);
    const err = await reasonOf(
      agents.call('backup01', 'removeBackups', { backupDirs: [`${BASE}/7/${id}`, ...paths] }),
    );
    expect(err.reason).toBe(reason);
    expect(await repoEntries(7)).toContain(id);
  });
});
