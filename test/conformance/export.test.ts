// Conformance of ExportImage (datastore export for marketplaces) against a real agent over mutual
// TLS with its export listener on loopback, and one agent without it: the repeat clause, the URL
// fetched with curl as OpenNebula's downloader.sh fetches it, and each documented error reason.
import { mkdirSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { MIB } from '../../common/src/units.js';
import { type ExportImageRequest, ImageFormat } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { call } from '../support/agent/agent-fixture.js';
import { fetchLikeDownloader, md5Of } from '../support/agent/export-fixture.js';
import { ds } from '../support/agent/agent-fixture.js';
import { expectFailure, repeated, useConformanceAgent } from './support/conformance-agent.js';
import { makeImage, setBacking } from './support/images.js';

const {
  IMAGE_FORMAT_RAW: RAW,
  IMAGE_FORMAT_QCOW2: QCOW2,
  IMAGE_FORMAT_UNSPECIFIED: UNSPECIFIED,
} = ImageFormat;
const { INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION } = grpc.status;

const c = useConformanceAgent({ export: { listen: '127.0.0.1:0' } });
const off = useConformanceAgent();

const exportImage = (req: Partial<ExportImageRequest>, agent = c) =>
  call(agent.client.exportImage.bind(agent.client), {
    source: '',
    format: QCOW2,
    ttlSeconds: 0,
    label: '',
    ...req,
  });

/**
 * The flattened copies ExportImage left in `dir` (they live until their export expires, after
 * the test): registered with the tracker, which removes them.
 */
function trackCopies(dir: string): string[] {
  const copies = readdirSync(c.local(dir)).filter((n) => n.includes('.tmp-'));
  for (const n of copies) c.tracker.track(`${dir}/${n}`);
  return copies;
}

describe('ExportImage', () => {
  it('serves a standalone image as it is; a repeat prepares a new URL to the same bytes', async () => {
    const file = await makeImage(c.local(c.tracker.track('1/e1')), 'qcow2', 8);
    const answers = await repeated(() => exportImage({ source: ds('1/e1'), format: QCOW2 }));
    const bytes = readFileSync(file);
    for (const a of answers) {
      expect({ ...a, url: '' }).toEqual({
        url: '',
        md5: md5Of(bytes),
        sizeBytes: bytes.length,
        virtualSize: 8 * MIB,
        format: QCOW2,
      });
    }
    expect(new Set(answers.map((a) => a.url)).size).toBe(answers.length);
    expect(trackCopies('1')).toEqual([]);
    const got = join(c.local(c.tracker.track('1/downloaded')));
    expect((await fetchLikeDownloader(answers[0]?.url ?? '', got)).code).toBe(0);
    expect(readFileSync(got).equals(bytes)).toBe(true);
  });

  it('flattens a chain into a standalone copy of the same format beside SOURCE', async () => {
    c.tracker.track('1/e2.snap');
    mkdirSync(c.local('1/e2.snap'));
    await makeImage(c.local('1/e2.snap/0'), 'qcow2', 8);
    await makeImage(c.local('1/e2.snap/1'), 'qcow2', 8, { name: '0', format: 'qcow2' });
    symlinkSync('e2.snap/1', c.local(c.tracker.track('1/e2')));
    const r = await exportImage({ source: ds('1/e2'), format: QCOW2, label: 'e2.qcow2' });
    expect(r).toMatchObject({ virtualSize: 8 * MIB, format: QCOW2 });
    expect(r.url).toMatch(/\/export\/[A-Za-z0-9_-]{43}\/e2\.qcow2$/);
    const copies = trackCopies('1');
    expect(copies).toHaveLength(1);
    const copy = readFileSync(c.local(`1/${copies[0] ?? ''}`));
    expect([md5Of(copy), copy.length]).toEqual([r.md5, r.sizeBytes]);
  });

  it('a missing source or format, ttl_seconds over a day, or a bad label is INVALID_ARGUMENT, named', async () => {
    await makeImage(c.local(c.tracker.track('1/e3')), 'raw', 1);
    const source = ds('1/e3');
    await expectFailure(exportImage({ format: RAW }), INVALID_ARGUMENT, 'INVALID_ARGUMENT', /source/);
    await expectFailure(
      exportImage({ source, format: UNSPECIFIED }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /format must be one of raw, qcow2/,
    );
    await expectFailure(
      exportImage({ source, format: RAW, ttlSeconds: 86_401 }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /ttl_seconds must be at most 86400/,
    );
    for (const label of ['..', '.hidden', 'a/b', 'x'.repeat(65), 'image 7']) {
      await expectFailure(
        exportImage({ source, format: RAW, label }),
        INVALID_ARGUMENT,
        'INVALID_ARGUMENT',
        /label must be/,
      );
    }
    await expectFailure(
      exportImage({ source: `${ds('1')}/../1/e3`, format: RAW }),
      INVALID_ARGUMENT,
      'UNSAFE_PATH',
    );
  });

  it('a source that is not a regular file is INVALID_ARGUMENT (BAD_IMAGE); a missing one NOT_FOUND', async () => {
    mkdirSync(c.local(c.tracker.track('1/e4')));
    await expectFailure(
      exportImage({ source: ds('1/e4'), format: RAW }),
      INVALID_ARGUMENT,
      'BAD_IMAGE',
      /e4/,
    );
    await expectFailure(exportImage({ source: ds('1/e5'), format: RAW }), NOT_FOUND, 'NOT_FOUND', /1\/e5/);
  });

  it('a source outside the roots, directly or through a link, is PERMISSION_DENIED (PATH_OUTSIDE_ROOTS)', async () => {
    await expectFailure(
      exportImage({ source: '/etc/passwd', format: RAW }),
      PERMISSION_DENIED,
      'PATH_OUTSIDE_ROOTS',
    );
    symlinkSync('/etc/hostname', c.local(c.tracker.track('1/e6')));
    await expectFailure(
      exportImage({ source: ds('1/e6'), format: RAW }),
      PERMISSION_DENIED,
      'PATH_OUTSIDE_ROOTS',
    );
  });

  it('an unsafe backing chain (a loop) is FAILED_PRECONDITION (BAD_LAYOUT), and nothing is copied', async () => {
    await makeImage(c.local(c.tracker.track('1/e7a')), 'qcow2', 8, { name: 'e7b', format: 'qcow2' });
    await makeImage(c.local(c.tracker.track('1/e7b')), 'qcow2', 8);
    await setBacking(c.local('1/e7b'), 'e7a');
    await expectFailure(exportImage({ source: ds('1/e7a') }), FAILED_PRECONDITION, 'BAD_LAYOUT');
    expect(trackCopies('1')).toEqual([]);
  });

  it('on an agent without export.listen is FAILED_PRECONDITION (EXPORT_DISABLED)', async () => {
    await makeImage(off.local(off.tracker.track('1/e8')), 'raw', 1);
    await expectFailure(
      exportImage({ source: ds('1/e8'), format: RAW }, off),
      FAILED_PRECONDITION,
      'EXPORT_DISABLED',
      /set export\.listen/,
    );
  });
});
