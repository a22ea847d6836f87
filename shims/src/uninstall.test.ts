import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { shimEntries } from '../../common/src/drivers/driver-actions.js';
import { installShims, RUNTIME_FILE } from './install.js';
import { uninstallShims } from './uninstall.js';
import { PROBE_FILES } from './agent-query-script.js';
import { BACKUP_SUFFIX } from './installed-files.js';

const STOCK_PROBE = "#!/usr/bin/env ruby\n# OpenNebula's own probe\nputs 'DS_LOCATION_USED_MB=1'\n";
let dir: string;
let remotesDir: string;
let runtimeDir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'uninstall-test-'));
  remotesDir = join(dir, 'remotes');
  runtimeDir = join(dir, 'runtime');
  await mkdir(runtimeDir);
  await writeFile(join(runtimeDir, RUNTIME_FILE), '');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const install = () =>
  installShims({
    remotesDir,
    socketPath: '/run/one-storage/coordinator.sock',
    nodePath: '/usr/bin/node',
    runtimeDir,
  });
const probePath = (i: number): string => join(remotesDir, 'im', PROBE_FILES[i]?.path ?? 'missing');

async function writeAt(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, text);
}

describe('installShims keeps the OpenNebula probe it replaces', () => {
  it('moves it beside ours once; a repeat writes nothing and keeps the backup', async () => {
    await writeAt(probePath(0), STOCK_PROBE);
    const first = await install();
    expect(first.written).toContain(probePath(0));
    expect(await readFile(`${probePath(0)}${BACKUP_SUFFIX}`, 'utf8')).toBe(STOCK_PROBE);
    expect(await readFile(probePath(0), 'utf8')).toMatch(/^#!.*\n\/\/ one-storage /);
    const again = await install();
    expect(again.written).toEqual([]);
    expect(await readFile(`${probePath(0)}${BACKUP_SUFFIX}`, 'utf8')).toBe(STOCK_PROBE);
  });
});

describe('uninstallShims', () => {
  it('removes every shim and probe of ours, puts the OpenNebula probe back, leaves other files', async () => {
    await writeAt(probePath(0), STOCK_PROBE);
    const ssh = join(remotesDir, 'tm', 'ssh', 'clone');
    await writeAt(ssh, '#!/bin/bash\n# OpenNebula ssh clone\n');
    const operatorFile = join(remotesDir, 'tm', 'grpc', 'README.local');
    await install();
    await writeAt(operatorFile, 'notes\n');

    const r = await uninstallShims({ remotesDir });
    expect(r.removed).toHaveLength(shimEntries().length + PROBE_FILES.length);
    expect(r.restored).toEqual([probePath(0)]);
    expect(await readFile(probePath(0), 'utf8')).toBe(STOCK_PROBE);
    expect(existsSync(`${probePath(0)}${BACKUP_SUFFIX}`)).toBe(false);
    expect(existsSync(probePath(1))).toBe(false);
    expect(await readFile(ssh, 'utf8')).toBe('#!/bin/bash\n# OpenNebula ssh clone\n');
    // The operator's file keeps its directory; our other driver directories are gone.
    expect(await readdir(join(remotesDir, 'tm', 'grpc'))).toEqual(['README.local']);
    expect(existsSync(join(remotesDir, 'tm', 'grpc_qcow2'))).toBe(false);
    expect(existsSync(join(remotesDir, 'datastore', 'grpc'))).toBe(false);

    const again = await uninstallShims({ remotesDir });
    expect(again).toEqual({ removed: [], restored: [] });
  });
});
