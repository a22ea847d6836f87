// Conformance of the agent's image registration RPCs (ImportImage, OpenImportSource,
// ProbeImageSource) against a real agent over mutual TLS, fetching from a real HTTP server on
// loopback and from uploads under the agent's import directory.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../../common/src/tools/run-tool.js';
import {
  FileKind,
  ImageFormat,
  type ImportImageRequest,
  type LocalImportSource,
} from '../../proto/gen/onestorage/agent/v1/agent.js';
import { AGENT_NAME, call } from '../support/agent/agent-fixture.js';
import { compressed, importRequest, rawDisk } from '../support/agent/import-images.js';
import { type ImageServer, startImageServer } from '../support/image-server.js';
import { expectFailure, expectSameEveryTime, useConformanceAgent } from './support/conformance-agent.js';

const uploads = mkdtempSync(join(tmpdir(), 'conformance-uploads-'));
const c = useConformanceAgent({ imports: { dirs: [uploads] } });
const { INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, DATA_LOSS, UNAVAILABLE, RESOURCE_EXHAUSTED } =
  grpc.status;
const RAW = rawDisk(4);
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
let images: ImageServer;

beforeAll(async () => {
  images = await startImageServer();
  writeFileSync(join(uploads, 'disk.raw'), RAW);
  mkdirSync(join(uploads, 'private'));
  writeFileSync(join(uploads, 'private/disk.raw'), RAW);
});
afterAll(async () => {
  await images?.close();
  rmSync(uploads, { recursive: true, force: true });
});

const local = (path: string, restrictedDirs: string[] = []): LocalImportSource => ({
  path,
  safeDirs: [],
  restrictedDirs,
});

const importImage = (req: Partial<ImportImageRequest>) =>
  call(c.client.importImage.bind(c.client), importRequest(req));

const offer = (path: string, receiverName = AGENT_NAME, restrictedDirs: string[] = []) =>
  call(c.client.openImportSource.bind(c.client), {
    source: local(path, restrictedDirs),
    receiverName,
    ttlSeconds: 0,
  });

describe('ImportImage', () => {
  it('registers an image; a repeat fetches again and replaces it with the same bytes', async () => {
    const url = images.serve('/repeat.img', RAW);
    const destination = c.made('1/repeat');
    const r = await expectSameEveryTime(() => importImage({ destination, url, md5: md5(RAW) }));
    expect(r).toMatchObject({ format: ImageFormat.IMAGE_FORMAT_RAW, virtualSize: RAW.length, md5: md5(RAW) });
    expect(images.requests('/repeat.img')).toHaveLength(10);
    expect(readFileSync(c.local('1/repeat')).equals(RAW)).toBe(true);
  });

  it('takes a local upload and a file another agent offers (remote)', async () => {
    const fromLocal = await importImage({
      destination: c.made('1/from-local'),
      local: local(join(uploads, 'disk.raw')),
    });
    const offered = await offer(join(uploads, 'disk.raw'));
    const fromRemote = await importImage({
      destination: c.made('1/from-remote'),
      remote: { ticket: offered.ticket, dataAddress: offered.dataAddress, sourceName: AGENT_NAME },
    });
    expect(fromRemote).toEqual({ ...fromLocal, actualSize: fromRemote.actualSize });
  });

  it('INVALID_ARGUMENT for a missing destination or source, an unsupported scheme, a malformed checksum', async () => {
    const url = images.serve('/args.img', RAW);
    await expectFailure(importImage({ url }), INVALID_ARGUMENT, 'INVALID_ARGUMENT', /destination/);
    await expectFailure(
      importImage({ destination: c.made('1/a') }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /source/,
    );
    await expectFailure(
      importImage({ destination: c.made('1/a'), url: 's3://bucket/disk' }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /scheme "s3"/,
    );
    await expectFailure(
      importImage({ destination: c.made('1/a'), url, md5: 'xyz' }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /md5 must be 32 hex digits/,
    );
    await expectFailure(
      importImage({ destination: c.made('1/a'), url, convertTo: 7 as ImageFormat }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /convert_to/,
    );
  });

  it('INVALID_ARGUMENT (BAD_IMAGE) for an image that is not standalone or in a format not stored', async () => {
    const work = mkdtempSync(join(tmpdir(), 'conformance-img-'));
    try {
      await runTool('qemu-img', ['create', '-q', '-f', 'raw', join(work, 'base'), '1M']);
      await runTool('qemu-img', [
        'create',
        '-q',
        '-f',
        'qcow2',
        '-b',
        'base',
        '-F',
        'raw',
        join(work, 'top'),
      ]);
      await runTool('qemu-img', ['create', '-q', '-f', 'vdi', join(work, 'disk.vdi'), '1M']);
      const top = images.serve('/top.qcow2', readFileSync(join(work, 'top')));
      const vdi = images.serve('/disk.vdi', readFileSync(join(work, 'disk.vdi')));
      await expectFailure(
        importImage({ destination: c.made('1/b'), url: top }),
        INVALID_ARGUMENT,
        'BAD_IMAGE',
        /backing file/,
      );
      await expectFailure(
        importImage({ destination: c.made('1/b'), url: vdi }),
        INVALID_ARGUMENT,
        'BAD_IMAGE',
        /vdi/,
      );
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('NOT_FOUND for a 404 or a missing file; PERMISSION_DENIED (PATH_RESTRICTED) for a refused path', async () => {
    await expectFailure(
      importImage({ destination: c.made('1/n'), url: images.url('/absent') }),
      NOT_FOUND,
      'NOT_FOUND',
      images.url('/absent'),
    );
    await expectFailure(
      importImage({ destination: c.made('1/n'), local: local(join(uploads, 'absent.raw')) }),
      NOT_FOUND,
      'NOT_FOUND',
      /absent\.raw/,
    );
    const restricted = join(uploads, 'private');
    await expectFailure(
      importImage({ destination: c.made('1/n'), local: local(join(restricted, 'disk.raw'), [restricted]) }),
      PERMISSION_DENIED,
      'PATH_RESTRICTED',
      restricted,
    );
    await expectFailure(
      importImage({ destination: c.made('1/n'), local: local('/etc/hostname') }),
      PERMISSION_DENIED,
      'PATH_RESTRICTED',
      /import directories/,
    );
  });

  it('DATA_LOSS for a checksum mismatch or a truncated body', async () => {
    const url = images.serve('/dl.img', RAW);
    await expectFailure(
      importImage({ destination: c.made('1/d'), url, sha1: '0'.repeat(40) }),
      DATA_LOSS,
      'CHECKSUM_MISMATCH',
      /SHA1 mismatch/,
    );
    const cut = images.serve('/dl-cut.img', RAW, { scenario: 'truncated' });
    await expectFailure(
      importImage({ destination: c.made('1/d'), url: cut }),
      DATA_LOSS,
      'CHECKSUM_MISMATCH',
      /truncated/,
    );
  });

  it('UNAVAILABLE (SOURCE_UNAVAILABLE) when the server cannot be reached after the retries', async () => {
    const gone = await startImageServer();
    const url = gone.url('/x.img');
    await gone.close();
    await expectFailure(
      importImage({ destination: c.made('1/u'), url }),
      UNAVAILABLE,
      'SOURCE_UNAVAILABLE',
      /after 4 tries/,
    );
  });

  it.runIf(process.getuid?.() === 0)(
    'RESOURCE_EXHAUSTED (NO_SPACE) when the datastore fills up; nothing is left',
    async () => {
      const dir = c.local(c.tracker.track('1/tiny'));
      mkdirSync(dir);
      await runTool('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
      try {
        const url = images.serve('/big.img', randomBytes(4 * 1024 * 1024));
        await expectFailure(
          importImage({ destination: c.made('1/tiny/img'), url }),
          RESOURCE_EXHAUSTED,
          'NO_SPACE',
        );
        expect(readdirSync(dir)).toEqual([]);
      } finally {
        await runTool('umount', [dir]);
      }
    },
  );
});

describe('OpenImportSource', () => {
  it('offers an upload; a repeat issues a new ticket for the same file', async () => {
    const tickets = new Set<string>();
    const r = await expectSameEveryTime(
      async () => {
        const o = await offer(join(uploads, 'disk.raw'));
        tickets.add(o.ticket);
        return o;
      },
      (o) => ({ kind: o.kind, entries: o.entries, address: o.dataAddress }),
    );
    expect(r).toMatchObject({ kind: FileKind.FILE_KIND_FILE, entries: 1 });
    expect(tickets.size).toBe(10);
  });

  it('INVALID_ARGUMENT for a relative path or a directory; NOT_FOUND; PERMISSION_DENIED (PATH_RESTRICTED)', async () => {
    await expectFailure(offer('disk.raw'), INVALID_ARGUMENT, 'INVALID_ARGUMENT', /absolute path/);
    await expectFailure(
      offer(join(uploads, 'private')),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /not a regular file/,
    );
    await expectFailure(offer(join(uploads, 'absent.raw')), NOT_FOUND, 'NOT_FOUND');
    await expectFailure(
      offer(join(uploads, 'private/disk.raw'), AGENT_NAME, [join(uploads, 'private')]),
      PERMISSION_DENIED,
      'PATH_RESTRICTED',
    );
    await expectFailure(offer('/etc/hostname'), PERMISSION_DENIED, 'PATH_RESTRICTED');
    await expectFailure(
      offer(join(uploads, 'disk.raw'), ''),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /receiver_name/,
    );
  });
});

describe('ProbeImageSource', () => {
  const probe = (req: { url?: string; local?: LocalImportSource }) =>
    call(c.client.probeImageSource.bind(c.client), { noDecompress: false, label: 'image 7', ...req });

  it('measures without changing anything; a repeat gives the same answer', async () => {
    const url = images.serve('/probe.img', RAW);
    expect(await expectSameEveryTime(() => probe({ url }))).toEqual({
      sizeBytes: RAW.length,
      format: 'raw',
      compression: '',
    });
    expect(await expectSameEveryTime(() => probe({ local: local(join(uploads, 'disk.raw')) }))).toEqual({
      sizeBytes: RAW.length,
      format: 'raw',
      compression: '',
    });
  });

  it('INVALID_ARGUMENT (BAD_IMAGE) for a compressed raw URL; NOT_FOUND for a 404; INVALID_ARGUMENT for a scheme', async () => {
    const gz = images.serve('/probe.gz', compressed('gzip', RAW));
    await expectFailure(probe({ url: gz }), INVALID_ARGUMENT, 'BAD_IMAGE', /compressed raw/);
    await expectFailure(probe({ url: images.url('/absent') }), NOT_FOUND, 'NOT_FOUND', images.url('/absent'));
    await expectFailure(
      probe({ url: 'lxd://images/ubuntu' }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /scheme "lxd"/,
    );
    await expectFailure(probe({ local: local('/etc/hostname') }), PERMISSION_DENIED, 'PATH_RESTRICTED');
  });
});
