import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { installShims } from '../../../shims/src/install.js';
import { shimChecks } from './shim-checks.js';

const SOCKET = '/run/one-storage/coordinator.sock';
let dir: string;
let remotes: string;

/** A package tree holding a shim runtime of `version`; returns its run-shim.cjs. */
async function runtimeOf(name: string, version: string): Promise<string> {
  const root = join(dir, name);
  const src = join(root, 'dist', 'shims', 'src');
  await mkdir(src, { recursive: true });
  await writeFile(join(root, 'package.json'), JSON.stringify({ name: 'one-storage', version }));
  await writeFile(join(src, 'run-shim.cjs'), '');
  return join(src, 'run-shim.cjs');
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shim-checks-'));
  remotes = join(dir, 'remotes');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('shimChecks', () => {
  it('every file installed for this socket and runtime: one ok line with the version', async () => {
    const ours = await runtimeOf('ours', '9.9.9');
    const { files } = await installShims({
      remotesDir: remotes,
      socketPath: SOCKET,
      runtimeDir: join(ours, '..'),
    });
    const checks = await shimChecks(remotes, SOCKET, ours);
    expect(checks).toEqual([
      {
        name: 'shims',
        level: 'ok',
        detail: `${files.length} shims and probes under ${remotes}, runtime of version 9.9.9`,
        fix: '',
      },
    ]);
  });

  it('nothing installed: one FAIL naming the first files and counting the rest, with the install command', async () => {
    const ours = await runtimeOf('ours', '9.9.9');
    const [check, ...more] = await shimChecks(remotes, SOCKET, ours);
    expect(more).toEqual([]);
    expect(check?.level).toBe('fail');
    expect(check?.detail).toMatch(new RegExp(`^${remotes}/tm/\\S+, \\S+, \\S+ and \\d+ more are missing$`));
    expect(check?.fix).toBe(
      `one-storage shims install --remotes ${remotes} --socket ${SOCKET} --runtime ${join(ours, '..')}`,
    );
  });

  it('another socket, a file not executable, and shims of another version each get their line', async () => {
    const ours = await runtimeOf('ours', '9.9.9');
    const old = await runtimeOf('old', '1.0.0');
    await installShims({ remotesDir: remotes, socketPath: '/elsewhere.sock', runtimeDir: join(old, '..') });
    await chmod(join(remotes, 'tm', 'grpc', 'ln'), 0o644);
    const details = (await shimChecks(remotes, SOCKET, ours)).map((c) => `${c.level} ${c.detail}`);
    expect(details).toEqual([
      expect.stringMatching(
        /^fail .* are not as this version writes them \(edited, or for another socket than \/run\/one-storage\/coordinator\.sock\)$/,
      ),
      `fail ${join(remotes, 'tm', 'grpc', 'ln')} is not mode 0755`,
      expect.stringMatching(
        new RegExp(
          `^fail .* load the runtime ${old} \\(version 1\\.0\\.0\\), not this version's ${ours} \\(9\\.9\\.9\\)$`,
        ),
      ),
    ]);
  });
});
