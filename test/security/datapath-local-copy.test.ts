// Security review, class 3 (docs/security.md#the-attack-tests), on one host: the same-host copy (Copy RPC, what transfer() uses when both ends
// are one agent) treats a symlinked source as the data path does: followed only to inside the
// roots, and the content copied, never the link.
import { lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../common/src/errors.js';
import { copyPath } from '../../agent/src/rpc/copy.js';
import { ds } from '../support/agent/agent-fixture.js';
import { localAgent } from '../support/agent/disk-testing.js';

let base: string;
let root: string;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'datapath-local-copy-'));
  root = join(base, 'root');
  await mkdir(join(root, '0', '77'), { recursive: true });
  await mkdir(join(root, '0', '46'), { recursive: true });
  await mkdir(join(root, '1'), { recursive: true });
  await mkdir(join(base, 'outside'));
  await writeFile(join(base, 'outside', 'other-disk'), 'another tenant', { mode: 0o600 });
  await writeFile(join(root, '0', '77', 'disk.0'), 'VM 77 disk bytes');
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('datapath: same-host copy of a symlinked source (security review, class 3)', () => {
  it('a source linking outside the roots is refused and nothing is created', async () => {
    await symlink(join(base, 'outside', 'other-disk'), join(root, '1', 'evil-image'));
    const { agent, call } = localAgent(root);
    const err = await copyPath(
      agent,
      { source: ds('1/evil-image'), destination: ds('0/46/disk.0'), sparse: true },
      call,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ reason: 'PATH_OUTSIDE_ROOTS' });
    await expect(lstat(join(root, '0', '46', 'disk.0'))).rejects.toThrow(/ENOENT/);
  });

  it('a source linking inside the roots is copied as its content, not as a link', async () => {
    await symlink(join(root, '0', '77', 'disk.0'), join(root, '1', 'linked-image'));
    const { agent, call } = localAgent(root);
    await copyPath(
      agent,
      { source: ds('1/linked-image'), destination: ds('0/46/disk.1'), sparse: true },
      call,
    );
    const dst = join(root, '0', '46', 'disk.1');
    expect((await lstat(dst)).isFile()).toBe(true);
    expect(await readFile(dst, 'utf8')).toBe('VM 77 disk bytes');
  });
});
