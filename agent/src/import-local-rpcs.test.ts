import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../../common/src/tools/run-tool.js';
import {
  FileKind,
  ImageFormat,
  type ImportImageRequest,
  type LocalImportSource,
} from '../../proto/gen/onestorage/agent/v1/agent.js';
import { AGENT_NAME, call, failure } from '../../test/support/agent/agent-fixture.js';
import { MIB } from '../../test/support/agent/disk-testing.js';
import { compressed, importRequest, qcow2Disk, rawDisk } from '../../test/support/agent/import-images.js';
import { SECOND_AGENT, ds, useImportTestbed } from '../../test/support/agent/import-testbed.js';

/**
 * ImportImage from a local upload and from another agent (OpenImportSource), through real agents
 * over mutual TLS: the import rules on the resolved path, directory boundaries, symlinks, and the
 * data path between two agents (docs/image-datastore.md#registering-an-image-cp-on-the-agent).
 */
const t = useImportTestbed({ second: true });
const { INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED } = grpc.status;
const RAW = rawDisk(4);
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
let up: (rel: string) => string;

beforeAll(async () => {
  up = (rel) => join(t.uploads, rel);
  for (const d of ['tmp', 'tmpfoo', 'secret']) mkdirSync(up(d));
  for (const f of ['tmp/disk.img', 'tmpfoo/disk.img', 'secret/disk.img']) writeFileSync(up(f), RAW);
  symlinkSync(up('secret/disk.img'), up('tmp/link-to-secret'));
  symlinkSync('/etc/hostname', up('tmp/link-out'));
  await qcow2Disk(t.uploads, 'tmp/disk.qcow2');
  writeFileSync(up('tmp/disk.qcow2.xz'), compressed('xz', readFileSync(up('tmp/disk.qcow2'))));
});

const local = (path: string, safeDirs: string[] = [], restrictedDirs: string[] = []): LocalImportSource => ({
  path,
  safeDirs,
  restrictedDirs,
});

function importImage(req: Partial<ImportImageRequest>) {
  return call(t.client.importImage.bind(t.client), importRequest({ label: 'image 8', ...req }));
}

const noTemps = async (): Promise<string[]> => (await t.entries('1')).filter((n) => n.includes('.tmp-'));

describe('ImportImage from a local path', () => {
  it('registers an upload under the import directories', async () => {
    const r = await importImage({
      destination: ds('1/local'),
      local: local(up('tmp/disk.img'), [], [up('secret')]),
    });
    expect(r).toMatchObject({ format: ImageFormat.IMAGE_FORMAT_RAW, virtualSize: RAW.length, md5: md5(RAW) });
    expect(readFileSync(t.local('1/local')).equals(RAW)).toBe(true);
  });

  it('an xz-compressed local qcow2 is decompressed and kept as qcow2', async () => {
    const r = await importImage({ destination: ds('1/local-xz'), local: local(up('tmp/disk.qcow2.xz')) });
    expect(r).toMatchObject({ format: ImageFormat.IMAGE_FORMAT_QCOW2, virtualSize: 4 * MIB });
    await runTool('qemu-img', [
      'compare',
      '-f',
      'qcow2',
      '-F',
      'qcow2',
      up('tmp/disk.qcow2'),
      t.local('1/local-xz'),
    ]);
  });

  it('refuses a path under RESTRICTED_DIRS (PATH_RESTRICTED), naming the resolved path and the dir', async () => {
    const f = await failure(
      importImage({ destination: ds('1/r1'), local: local(up('secret/disk.img'), [], [up('secret')]) }),
    );
    expect(f).toMatchObject({ code: PERMISSION_DENIED, reason: 'PATH_RESTRICTED' });
    expect(f.message).toContain(up('secret/disk.img'));
    expect(f.message).toContain(`under ${up('secret')} (RESTRICTED_DIRS)`);
    expect(existsSync(t.local('1/r1'))).toBe(false);
  });

  it('refuses a symlink into a restricted dir on its resolved path', async () => {
    const f = await failure(
      importImage({ destination: ds('1/r2'), local: local(up('tmp/link-to-secret'), [], [up('secret')]) }),
    );
    expect(f).toMatchObject({ code: PERMISSION_DENIED, reason: 'PATH_RESTRICTED' });
    expect(f.message).toContain(`resolves to ${up('secret/disk.img')}`);
  });

  it('refuses what resolves outside the import directories (a symlink to /etc)', async () => {
    const f = await failure(
      importImage({ destination: ds('1/r3'), local: local(up('tmp/link-out'), ['/']) }),
    );
    expect(f).toMatchObject({ code: PERMISSION_DENIED, reason: 'PATH_RESTRICTED' });
    expect(f.message).toMatch(/outside this agent's import directories/);
  });

  it('goes by directory boundaries: SAFE_DIRS .../tmp does not open .../tmpfoo under RESTRICTED_DIRS /', async () => {
    const rules = (path: string) => local(path, [up('tmp')], ['/']);
    expect(
      (await importImage({ destination: ds('1/b1'), local: rules(up('tmp/disk.img')) })).virtualSize,
    ).toBe(RAW.length);
    const f = await failure(importImage({ destination: ds('1/b2'), local: rules(up('tmpfoo/disk.img')) }));
    expect(f).toMatchObject({ code: PERMISSION_DENIED, reason: 'PATH_RESTRICTED' });
    expect(f.message).toContain('under / (RESTRICTED_DIRS)');
  });

  it('a missing file is NOT_FOUND; a relative path or a directory INVALID_ARGUMENT', async () => {
    expect(
      await failure(importImage({ destination: ds('1/x'), local: local(up('tmp/none.img')) })),
    ).toMatchObject({ code: NOT_FOUND, reason: 'NOT_FOUND' });
    expect(
      await failure(importImage({ destination: ds('1/x'), local: local('tmp/disk.img') })),
    ).toMatchObject({ code: INVALID_ARGUMENT });
    expect(await failure(importImage({ destination: ds('1/x'), local: local(up('tmp')) }))).toMatchObject({
      code: INVALID_ARGUMENT,
    });
    expect(await noTemps()).toEqual([]);
  });
});

describe('ImportImage from another agent (OpenImportSource)', () => {
  const offer = (path: string, receiverName = AGENT_NAME, rules: Partial<LocalImportSource> = {}) =>
    call(t.second.client.openImportSource.bind(t.second.client), {
      source: { ...local(path), ...rules },
      receiverName,
      ttlSeconds: 0,
    });

  it('host02 offers its upload, host01 pulls and registers it; the staging file is gone', async () => {
    mkdirSync(join(t.second.uploads, 'in'), { recursive: true });
    const src = join(t.second.uploads, 'in/disk.qcow2');
    await qcow2Disk(join(t.second.uploads, 'in'), 'disk.qcow2');
    const offered = await offer(src);
    expect(offered).toMatchObject({ kind: FileKind.FILE_KIND_FILE, entries: 1 });
    const r = await importImage({
      destination: ds('1/remote'),
      remote: { ticket: offered.ticket, dataAddress: offered.dataAddress, sourceName: SECOND_AGENT },
      md5: md5(readFileSync(src)),
    });
    expect(r).toMatchObject({
      format: ImageFormat.IMAGE_FORMAT_QCOW2,
      virtualSize: 4 * MIB,
      fetchedBytes: readFileSync(src).length,
    });
    await runTool('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', src, t.local('1/remote')]);
    expect(await noTemps()).toEqual([]);
    // The ticket was single-use.
    const again = await failure(
      importImage({
        destination: ds('1/remote2'),
        remote: { ticket: offered.ticket, dataAddress: offered.dataAddress, sourceName: SECOND_AGENT },
      }),
    );
    expect(again).toMatchObject({ code: PERMISSION_DENIED, reason: 'TICKET_INVALID' });
    expect(await noTemps()).toEqual([]);
  });

  it('a refused remote image (BAD_IMAGE) leaves neither the staging file nor the destination', async () => {
    const src = join(t.second.uploads, 'archive.tar');
    writeFileSync(src, Buffer.concat([Buffer.alloc(257), Buffer.from('ustar\0'), Buffer.alloc(8192)]));
    const offered = await offer(src);
    const f = await failure(
      importImage({
        destination: ds('1/remote-bad'),
        remote: { ticket: offered.ticket, dataAddress: offered.dataAddress, sourceName: SECOND_AGENT },
      }),
    );
    expect(f).toMatchObject({ code: INVALID_ARGUMENT, reason: 'BAD_IMAGE' });
    expect(existsSync(t.local('1/remote-bad'))).toBe(false);
    expect(await noTemps()).toEqual([]);
  });

  it('a raw image received as it is: zero blocks written as data become holes, the bytes are the same', async () => {
    const src = join(t.second.uploads, 'dense.img');
    // Every block written, zeros included: the received file is as dense, the registered one is not.
    writeFileSync(src, RAW);
    const offered = await offer(src);
    const r = await importImage({
      destination: ds('1/remote-raw'),
      remote: { ticket: offered.ticket, dataAddress: offered.dataAddress, sourceName: SECOND_AGENT },
      md5: md5(RAW),
      sha1: createHash('sha1').update(RAW).digest('hex').toUpperCase(),
    });
    expect(r).toMatchObject({ format: ImageFormat.IMAGE_FORMAT_RAW, virtualSize: RAW.length, md5: md5(RAW) });
    expect(readFileSync(t.local('1/remote-raw')).equals(RAW)).toBe(true);
    // 256 KiB + 64 KiB of data in 4 MiB.
    expect(r.actualSize).toBeLessThanOrEqual(512 * 1024);
    expect(await noTemps()).toEqual([]);
  });

  it('SPARSE=no: a received image is fully allocated', async () => {
    const src = join(t.second.uploads, 'sparse.img');
    await runTool('truncate', ['-s', String(RAW.length), src]);
    writeFileSync(src, RAW.subarray(0, 256 * 1024), { flag: 'r+' });
    const offered = await offer(src);
    const r = await importImage({
      destination: ds('1/remote-full'),
      remote: { ticket: offered.ticket, dataAddress: offered.dataAddress, sourceName: SECOND_AGENT },
      sparse: false,
    });
    expect(r.actualSize).toBeGreaterThanOrEqual(RAW.length);
    expect(await noTemps()).toEqual([]);
  });

  it('a wrong checksum of a received image is DATA_LOSS; nothing is left', async () => {
    const src = join(t.second.uploads, 'in/disk.qcow2');
    const offered = await offer(src);
    const f = await failure(
      importImage({
        destination: ds('1/remote-sum'),
        remote: { ticket: offered.ticket, dataAddress: offered.dataAddress, sourceName: SECOND_AGENT },
        md5: md5(readFileSync(src)),
        sha1: 'f'.repeat(40),
      }),
    );
    expect(f).toMatchObject({ code: grpc.status.DATA_LOSS, reason: 'CHECKSUM_MISMATCH' });
    expect(f.message).toContain('SHA1 mismatch');
    expect(existsSync(t.local('1/remote-sum'))).toBe(false);
    expect(await noTemps()).toEqual([]);
  });

  it('a gzip-compressed received qcow2 still goes through the pipeline: decompressed, kept as qcow2', async () => {
    const qcow2 = readFileSync(join(t.second.uploads, 'in/disk.qcow2'));
    const src = join(t.second.uploads, 'disk.qcow2.gz');
    writeFileSync(src, compressed('gzip', qcow2));
    const offered = await offer(src);
    const r = await importImage({
      destination: ds('1/remote-gz'),
      remote: { ticket: offered.ticket, dataAddress: offered.dataAddress, sourceName: SECOND_AGENT },
      md5: md5(readFileSync(src)),
    });
    expect(r).toMatchObject({
      format: ImageFormat.IMAGE_FORMAT_QCOW2,
      fetchedBytes: readFileSync(src).length,
    });
    expect(readFileSync(t.local('1/remote-gz')).equals(qcow2)).toBe(true);
    expect(await noTemps()).toEqual([]);
  });

  it('OpenImportSource follows the import rules and wants a regular file and a receiver', async () => {
    mkdirSync(join(t.second.uploads, 'private'), { recursive: true });
    writeFileSync(join(t.second.uploads, 'private/x.img'), 'x');
    const restricted = await failure(
      offer(join(t.second.uploads, 'private/x.img'), AGENT_NAME, {
        restrictedDirs: [join(t.second.uploads, 'private')],
      }),
    );
    expect(restricted).toMatchObject({ code: PERMISSION_DENIED, reason: 'PATH_RESTRICTED' });
    expect(await failure(offer('/etc/hostname'))).toMatchObject({
      code: PERMISSION_DENIED,
      reason: 'PATH_RESTRICTED',
    });
    expect(await failure(offer(join(t.second.uploads, 'private')))).toMatchObject({ code: INVALID_ARGUMENT });
    expect(await failure(offer(join(t.second.uploads, 'nope.img')))).toMatchObject({ code: NOT_FOUND });
    const noReceiver = await failure(offer(join(t.second.uploads, 'private/x.img'), ''));
    expect(noReceiver).toMatchObject({ code: INVALID_ARGUMENT });
    expect(noReceiver.message).toContain('receiver_name');
  });
});
