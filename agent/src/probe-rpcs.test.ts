import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCertificate, pkiFiles } from '../../common/src/pki/pki.js';
import { ImageFormat, type ProbeImageSourceRequest } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { call, failure } from '../../test/support/agent/agent-fixture.js';
import { MIB, qemuImg } from '../../test/support/agent/disk-testing.js';
import {
  bytesOf,
  compressed,
  convertedDisk,
  importRequest,
  qcow2Disk,
  rawDisk,
} from '../../test/support/agent/import-images.js';
import { ds, useImportTestbed } from '../../test/support/agent/import-testbed.js';
import { type ImageServer, startImageServer } from '../../test/support/image-server.js';

/**
 * ProbeImageSource (datastore stat) through a real agent over mutual TLS, for URLs of a real image
 * server and local uploads; and https sources, verified against the cloud's CA.
 */
const t = useImportTestbed();
const { INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE } = grpc.status;
const RAW = rawDisk(4);
let qcow2: Buffer;
let vmdk: Buffer;
let trusted: ImageServer;
let foreign: ImageServer;

beforeAll(async () => {
  const work = join(t.base, 'work');
  mkdirSync(work);
  const file = await qcow2Disk(work, 'disk.qcow2', 6);
  qcow2 = bytesOf(file);
  vmdk = bytesOf(await convertedDisk(work, file, 'qcow2', 'disk.vmdk', 'vmdk'));
  writeFileSync(join(t.uploads, 'disk.qcow2.bz2'), compressed('bzip2', qcow2));
  writeFileSync(join(t.uploads, 'disk.raw.gz'), compressed('gzip', RAW));
  writeFileSync(join(t.uploads, 'disk.raw'), RAW);
  writeFileSync(join(t.uploads, 'empty.img'), '');
  // An https image server with a certificate from the cloud's CA, and one from a CA nobody trusts.
  await issueCertificate(t.pki.dir, 'images', ['127.0.0.1']);
  await issueCertificate(t.pki.otherDir, 'images', ['127.0.0.1']);
  const tlsOf = (dir: string) => {
    const f = pkiFiles(dir, 'images');
    return { cert: readFileSync(f.cert), key: readFileSync(f.key) };
  };
  trusted = await startImageServer({ tls: tlsOf(t.pki.dir) });
  foreign = await startImageServer({ tls: tlsOf(t.pki.otherDir) });
});
afterAll(async () => {
  await trusted?.close();
  await foreign?.close();
});

const probe = (req: Partial<ProbeImageSourceRequest>) =>
  call(t.client.probeImageSource.bind(t.client), { noDecompress: false, label: 'image 9', ...req });
const local = (name: string) => ({ path: join(t.uploads, name), safeDirs: [], restrictedDirs: [] });

describe('ProbeImageSource', () => {
  it.each([
    [
      'a qcow2: its virtual size from the header',
      () => qcow2,
      { sizeBytes: 6 * MIB, format: 'qcow2', compression: '' },
    ],
    [
      'a gzip-compressed qcow2: the header of the decompressed head',
      () => compressed('gzip', qcow2),
      { sizeBytes: 6 * MIB, format: 'qcow2', compression: 'gzip' },
    ],
    [
      'a plain raw image: its Content-Length',
      () => RAW,
      { sizeBytes: RAW.length, format: 'raw', compression: '' },
    ],
    ['a vmdk: its capacity', () => vmdk, { sizeBytes: 6 * MIB, format: 'vmdk', compression: '' }],
  ])('measures %s over http', async (title, body, expected) => {
    const url = t.images.serve(`/p${title.length}`, body());
    expect(await probe({ url })).toEqual(expected);
  });

  it.each([
    [
      'a compressed raw image behind a URL',
      () => t.images.serve('/raw.gz', compressed('gzip', RAW)),
      /compressed raw image behind a URL cannot be measured/,
    ],
    [
      'a server that gives no size',
      () => t.images.serve('/chunked', RAW, { scenario: 'chunked' }),
      /the server gives no size/,
    ],
    ['an empty file', () => t.images.serve('/empty', Buffer.alloc(0)), /it is empty/],
  ])('refuses %s (BAD_IMAGE)', async (_t, url, why) => {
    const f = await failure(probe({ url: url() }));
    expect(f).toMatchObject({ code: INVALID_ARGUMENT, reason: 'BAD_IMAGE' });
    expect(f.message).toMatch(why);
  });

  it('a 404 is NOT_FOUND naming the URL (not "Permission denied")', async () => {
    const url = t.images.url('/gone.qcow2');
    const f = await failure(probe({ url }));
    expect(f).toMatchObject({ code: NOT_FOUND, reason: 'NOT_FOUND' });
    expect(f.message).toContain(url);
  });

  it('an unsupported scheme is INVALID_ARGUMENT naming it', async () => {
    const f = await failure(probe({ url: 'ssh://frontend:/var/tmp/x.qcow2' }));
    expect(f).toMatchObject({ code: INVALID_ARGUMENT });
    expect(f.message).toContain('scheme "ssh"');
  });

  it('measures local uploads: a bzip2 qcow2 by its head, a gzip raw by decompressing it, a raw by its size', async () => {
    expect(await probe({ local: local('disk.qcow2.bz2') })).toEqual({
      sizeBytes: 6 * MIB,
      format: 'qcow2',
      compression: 'bzip2',
    });
    expect(await probe({ local: local('disk.raw.gz') })).toEqual({
      sizeBytes: RAW.length,
      format: 'raw',
      compression: 'gzip',
    });
    expect(await probe({ local: local('disk.raw') })).toEqual({
      sizeBytes: RAW.length,
      format: 'raw',
      compression: '',
    });
    const gz = readFileSync(join(t.uploads, 'disk.raw.gz')).length;
    expect(await probe({ local: local('disk.raw.gz'), noDecompress: true })).toEqual({
      sizeBytes: gz,
      format: 'raw',
      compression: '',
    });
  });

  it('a local path follows the import rules; a zero-byte file is BAD_IMAGE', async () => {
    const restricted = await failure(probe({ local: { ...local('disk.raw'), restrictedDirs: [t.uploads] } }));
    expect(restricted).toMatchObject({ reason: 'PATH_RESTRICTED' });
    expect(
      await failure(probe({ local: { path: '/etc/hostname', safeDirs: [], restrictedDirs: [] } })),
    ).toMatchObject({ reason: 'PATH_RESTRICTED' });
    expect(await failure(probe({ local: local('empty.img') }))).toMatchObject({ reason: 'BAD_IMAGE' });
  });
});

describe('https sources', () => {
  it('a server whose certificate the cloud CA signed is trusted (probe and import)', async () => {
    const url = trusted.serve('/disk.qcow2', qcow2);
    expect(url.startsWith('https://')).toBe(true);
    expect((await probe({ url })).sizeBytes).toBe(6 * MIB);
    const r = await call(
      t.client.importImage.bind(t.client),
      importRequest({ destination: ds('1/https'), url, label: 'image 10' }),
    );
    expect(r).toMatchObject({ format: ImageFormat.IMAGE_FORMAT_QCOW2, virtualSize: 6 * MIB });
    await qemuImg('check', '-f', 'qcow2', t.local('1/https'));
  });

  it('a certificate no trusted CA signed is refused at once (SOURCE_UNAVAILABLE), never retried', async () => {
    const url = foreign.serve('/disk.qcow2', qcow2);
    const f = await failure(probe({ url }));
    expect(f).toMatchObject({ code: UNAVAILABLE, reason: 'SOURCE_UNAVAILABLE' });
    expect(f.message).toMatch(/certificate/i);
    expect(foreign.requests()).toHaveLength(0);
  });
});
