// Security review, class 3 (docs/security.md#the-attack-tests): symlinks on the data path. Two real TransferServices (host-a sends, host-b
// receives) over mutual TLS on loopback, each confined to its own datastore root; "outside" is a
// directory beside the roots that neither agent serves.
import { lstat, mkdir, readFile, readdir, readlink, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../common/src/errors.js';
import { FileKind } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { rootResolver, silentLogger } from '../support/agent/transfer-support.js';
import { TransferService } from '../../agent/src/transfer/transfer-service.js';
import { oned, tempLeftovers, transfer, useTransferPair } from '../support/agent/transfer-test-fixture.js';

const pair = useTransferPair();

const SECRET = 'another tenant: TOP SECRET';
let outside: string;

beforeAll(async () => {
  outside = join(pair.work, 'outside');
  await mkdir(join(outside, 'snap'), { recursive: true });
  await writeFile(join(outside, 'snap', '0'), SECRET, { mode: 0o600 });
  await writeFile(join(outside, 'other-disk'), SECRET, { mode: 0o600 });
  await mkdir(join(outside, 'vmdir'));
  await writeFile(join(outside, 'vmdir', 'disk.0'), SECRET, { mode: 0o600 });
});

async function failure(p: Promise<unknown>): Promise<StorageError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  const e = err as StorageError;
  expect(e.message).not.toContain('\n');
  return e;
}

function receiveInto(ticket: string, dataAddress: string, dst: string) {
  return pair.b.receive(
    { ticket, dataAddress, sourceName: 'host-a', destination: oned(dst), sparse: true },
    new AbortController().signal,
  );
}

describe('datapath: symlinks on the data path (security review, class 3)', () => {
  it('(a) a subdirectory swapped for a symlink between OpenSend and the pull is not served', async () => {
    const vm = join(pair.rootA, '0', '40');
    await mkdir(join(vm, 'disk.0.snap'), { recursive: true });
    // Same length as SECRET: a size check alone would not notice the swap.
    await writeFile(join(vm, 'disk.0.snap', '0'), 'x'.repeat(SECRET.length));
    const sent = await pair.a.openSend({ path: oned('0/40'), ttlSeconds: 0, receiverName: 'host-b' });
    // The attack, deterministic: OpenSend has answered, the pull has not started.
    await rename(join(vm, 'disk.0.snap'), join(vm, 'moved-away'));
    await symlink(join(outside, 'snap'), join(vm, 'disk.0.snap'));

    const e = await failure(receiveInto(sent.ticket, sent.dataAddress, '0/40'));
    expect(e.message).toMatch(/^receive host-b:\/var\/lib\/one\/datastores\/0\/40 from host-a/);
    expect(e.message).toMatch(/disk\.0\.snap\/0/);
    await expect(lstat(join(pair.rootB, '0', '40'))).rejects.toThrow(/ENOENT/);
    expect(await tempLeftovers(join(pair.rootB, '0'))).toEqual([]);
  });

  it('(b) a file-level source that links outside the roots is refused', async () => {
    await mkdir(join(pair.rootA, '1'), { recursive: true });
    await symlink(join(outside, 'other-disk'), join(pair.rootA, '1', 'evil-image'));
    const e = await failure(
      pair.a.openSend({ path: oned('1/evil-image'), ttlSeconds: 0, receiverName: 'host-b' }),
    );
    expect(e.reason).toBe('PATH_OUTSIDE_ROOTS');
    expect(e.message).toMatch(/host-a:\/var\/lib\/one\/datastores\/1\/evil-image/);
  });

  it('(b) a file-level source that links inside the roots sends the content, never the link', async () => {
    await mkdir(join(pair.rootA, '0', '77'), { recursive: true });
    await writeFile(join(pair.rootA, '0', '77', 'disk.0'), 'VM 77 disk bytes');
    await mkdir(join(pair.rootA, '1'), { recursive: true });
    await symlink(join(pair.rootA, '0', '77', 'disk.0'), join(pair.rootA, '1', 'linked-image'));
    await mkdir(join(pair.rootB, '0', '46'), { recursive: true });
    const { sent } = await transfer(pair.a, 'host-a', '1/linked-image', pair.b, '0/46/disk.0');
    expect(sent.kind).toBe(FileKind.FILE_KIND_FILE);
    const dst = join(pair.rootB, '0', '46', 'disk.0');
    expect((await lstat(dst)).isFile()).toBe(true);
    expect(await readFile(dst, 'utf8')).toBe('VM 77 disk bytes');
  });

  it('(c) inside a tree, relative links that stay inside are kept; absolute or escaping ones are refused', async () => {
    const vm = join(pair.rootA, '0', '50');
    await mkdir(join(vm, 'disk.0.snap'), { recursive: true });
    await symlink('.', join(vm, 'disk.0.snap', 'disk.0.snap'));
    await writeFile(join(vm, 'disk.0.snap', '0'), 'base');
    await writeFile(join(vm, 'disk.0.snap', '1'), 'top');
    await symlink('disk.0.snap/1', join(vm, 'disk.0'));
    await transfer(pair.a, 'host-a', '0/50', pair.b, '0/50');
    expect(await readlink(join(pair.rootB, '0', '50', 'disk.0'))).toBe('disk.0.snap/1');
    expect(await readlink(join(pair.rootB, '0', '50', 'disk.0.snap', 'disk.0.snap'))).toBe('.');
    expect(await readFile(join(pair.rootB, '0', '50', 'disk.0'), 'utf8')).toBe('top');

    const cases: [string, string, string][] = [
      ['an absolute link', 'disk.1', join(pair.rootA, '0', '77', 'disk.0')],
      ['a link out of the tree', 'disk.1', '../77/disk.0'],
      ['a link out of the tree through another link', 'disk.1', 'disk.0.snap/up/../../77/disk.0'],
    ];
    for (const [what, name, target] of cases) {
      const tree = join(pair.rootA, '0', `51-${cases.findIndex((c) => c[0] === what)}`);
      await mkdir(join(tree, 'disk.0.snap'), { recursive: true });
      await symlink('..', join(tree, 'disk.0.snap', 'up'));
      await symlink(target, join(tree, name));
      const rel = `0/${tree.slice(tree.lastIndexOf('/') + 1)}`;
      const e = await failure(pair.a.openSend({ path: oned(rel), ttlSeconds: 0, receiverName: 'host-b' }));
      expect(e.message, what).toMatch(new RegExp(`${name}.*(absolute|leads out of)`));
    }
  });

  it('(d) a VM directory that is a symlink to outside the roots is refused, not copied as a link', async () => {
    await symlink(join(outside, 'vmdir'), join(pair.rootA, '0', '60'));
    const e = await failure(pair.a.openSend({ path: oned('0/60'), ttlSeconds: 0, receiverName: 'host-b' }));
    expect(e.reason).toBe('PATH_OUTSIDE_ROOTS');
    await expect(lstat(join(pair.rootB, '0', '60'))).rejects.toThrow(/ENOENT/);
  });

  it('(receiver) a destination directory swapped for a symlink after it was resolved is not written through', async () => {
    const dir = join(pair.rootB, '0', '48');
    await mkdir(dir, { recursive: true });
    const elsewhere = join(outside, 'receiver-target');
    await mkdir(elsewhere);
    const resolve = rootResolver(pair.rootB);
    // host-b's data path, whose path resolution is followed at once by the attack: the VM
    // directory it resolved becomes a symlink to a directory outside the roots.
    const swapped = new TransferService({
      name: 'host-b',
      tls: pair.tlsB,
      listen: '127.0.0.1:0',
      logger: silentLogger,
      realRoots: () => Promise.resolve([pair.rootB]),
      resolve: async (path, field) => {
        const local = await resolve(path, field);
        await rename(dir, join(pair.rootB, '0', '48-moved'));
        await symlink(elsewhere, dir);
        return local;
      },
    });
    await swapped.start();
    pair.extra.push(swapped);
    await writeFile(join(pair.rootA, '0', 'payload'), 'planted by the sender');
    const sent = await pair.a.openSend({ path: oned('0/payload'), ttlSeconds: 0, receiverName: 'host-b' });
    const e = await failure(
      swapped.receive(
        {
          ticket: sent.ticket,
          dataAddress: sent.dataAddress,
          sourceName: 'host-a',
          destination: oned('0/48/disk.0'),
          sparse: true,
        },
        new AbortController().signal,
      ),
    );
    expect(e.reason).toBe('PATH_OUTSIDE_ROOTS');
    expect(await readdir(elsewhere)).toEqual([]);
  });
});
