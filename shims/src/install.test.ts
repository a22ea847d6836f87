import {
  access,
  chmod,
  constants,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DS_ACTIONS,
  shimEntries,
  TM_ACTIONS,
  TM_MIXED_MODE_ACTIONS,
} from '../../common/src/drivers/driver-actions.js';
import { installShims, RUNTIME_FILE, SHIM_FILE_MODE } from './install.js';
import { PROBE_FILES } from './agent-query-script.js';

const PERMISSION_BITS = 0o777;
const SOCKET = '/run/one-storage/coordinator.sock';
const NODE = '/usr/bin/node';

let dir: string;
let remotesDir: string;
let runtimeDir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'install-test-'));
  remotesDir = join(dir, 'remotes');
  runtimeDir = join(dir, 'runtime');
  // A stand-in runtime: installShims only checks that it exists.
  await mkdir(runtimeDir);
  await writeFile(join(runtimeDir, RUNTIME_FILE), '');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const install = (overrides: Partial<Parameters<typeof installShims>[0]> = {}) =>
  installShims({ remotesDir, socketPath: SOCKET, nodePath: NODE, runtimeDir, ...overrides });

describe('installShims', () => {
  it.each([
    {
      kind: 'tm',
      driver: 'grpc',
      expected: [...TM_ACTIONS, ...TM_MIXED_MODE_ACTIONS.map((a) => `${a}.ssh`)],
    },
    {
      kind: 'tm',
      driver: 'grpc_qcow2',
      expected: [
        ...TM_ACTIONS,
        ...TM_MIXED_MODE_ACTIONS.map((a) => `${a}.grpc`),
        ...TM_MIXED_MODE_ACTIONS.map((a) => `${a}.ssh`),
      ],
    },
    { kind: 'datastore', driver: 'grpc', expected: [...DS_ACTIONS] },
    { kind: 'datastore', driver: 'grpc_backup', expected: [...DS_ACTIONS] },
  ])('writes exactly the $kind/$driver actions', async ({ kind, driver, expected }) => {
    await install();
    expect((await readdir(join(remotesDir, kind, driver))).sort()).toEqual([...expected].sort());
  });

  it('returns every file it wrote, one per entry', async () => {
    const { files } = await install();
    expect(files).toHaveLength(shimEntries().length + PROBE_FILES.length);
    expect(files).toContain(join(remotesDir, 'tm', 'grpc_qcow2', 'clone.ssh'));
    expect(files).toContain(join(remotesDir, 'im', 'kvm-probes.d', 'vm', 'monitor', 'monitor_ds_vm.rb'));
    expect(files).toContain(join(remotesDir, 'datastore', 'grpc_backup', 'backup_cancel'));
  });

  it('makes every file executable, mode 0755, whatever the umask', async () => {
    const previous = process.umask(0o077);
    try {
      const { files } = await install();
      for (const file of files) {
        expect(((await stat(file)).mode & PERMISSION_BITS).toString(8)).toBe(SHIM_FILE_MODE.toString(8));
        await access(file, constants.X_OK);
      }
    } finally {
      process.umask(previous);
    }
  });

  it('bakes the node binary, the runtime and the call into each entry', async () => {
    await install();
    const text = await readFile(join(remotesDir, 'tm', 'grpc', 'snap_create_live.ssh'), 'utf8');
    expect(text.split('\n')[0]).toBe(`#!${NODE}`);
    expect(text).toContain(JSON.stringify(join(runtimeDir, RUNTIME_FILE)));
    expect(text).toContain(
      JSON.stringify({ kind: 'tm', driver: 'grpc', action: 'snap_create_live.ssh', socketPath: SOCKET }),
    );
    expect(text).toContain('process.exitCode = code');
  });

  it('defaults the #! line to the node running the installer', async () => {
    const { files } = await installShims({ remotesDir, socketPath: SOCKET, runtimeDir });
    expect((await readFile(files[0] ?? '', 'utf8')).split('\n')[0]).toBe(`#!${process.execPath}`);
  });

  it('is idempotent: a second run leaves the same files untouched', async () => {
    const first = await install();
    const before = await Promise.all(
      first.files.map(async (f) => [await readFile(f, 'utf8'), (await stat(f)).mtimeMs]),
    );
    const second = await install();
    expect(second.files).toEqual(first.files);
    const after = await Promise.all(
      second.files.map(async (f) => [await readFile(f, 'utf8'), (await stat(f)).mtimeMs]),
    );
    expect(after).toEqual(before);
  });

  it('rewrites an entry whose content or mode has drifted', async () => {
    const { files } = await install();
    const file = files[0] ?? '';
    const good = await readFile(file, 'utf8');
    await writeFile(file, 'tampered', { mode: 0o644 });
    await chmod(file, 0o644);
    await install();
    expect(await readFile(file, 'utf8')).toBe(good);
    expect((await stat(file)).mode & PERMISSION_BITS).toBe(SHIM_FILE_MODE);
  });

  it('replaces an existing shim atomically: a reader of the old one sees it whole, the new one is another file', async () => {
    const { files } = await install();
    const file = files[0] ?? '';
    const old = await readFile(file, 'utf8');
    const oldInode = (await stat(file)).ino;
    const reader = await open(file, 'r');
    try {
      await install({ socketPath: '/run/other.sock' });
      // Renamed over, never rewritten in place: the old inode keeps the old text in full.
      expect(await reader.readFile('utf8')).toBe(old);
    } finally {
      await reader.close();
    }
    expect((await stat(file)).ino).not.toBe(oldInode);
    expect(await readFile(file, 'utf8')).toContain('/run/other.sock');
  });

  it('leaves no temporary files behind', async () => {
    await install();
    await install({ socketPath: '/run/other.sock' });
    for (const [kind, driver] of [
      ['tm', 'grpc'],
      ['tm', 'grpc_qcow2'],
      ['datastore', 'grpc'],
      ['datastore', 'grpc_backup'],
    ] as const) {
      expect(
        (await readdir(join(remotesDir, kind, driver))).filter((name) => name.includes('.tmp-')),
      ).toEqual([]);
    }
  });

  it.each([
    { name: 'a relative node path', overrides: { nodePath: 'node' }, error: /nodePath must be absolute/ },
    { name: 'a node path with a blank', overrides: { nodePath: '/opt/my node/bin/node' }, error: /blanks/ },
    {
      name: 'a node path too long for #!',
      overrides: { nodePath: `/${'n'.repeat(300)}` },
      error: /too long/,
    },
    {
      name: 'a relative socket path',
      overrides: { socketPath: 'coordinator.sock' },
      error: /socketPath must be absolute/,
    },
    {
      name: 'a missing runtime',
      overrides: { runtimeDir: '/nonexistent' },
      error: /run-shim\.cjs is missing \(ENOENT\)/,
    },
  ])('refuses $name before writing anything', async ({ overrides, error }) => {
    await expect(install(overrides)).rejects.toThrow(error);
    await expect(stat(remotesDir)).rejects.toThrow(/ENOENT/);
  });
});
