// Conformance of the agent's RPCs that make or read one image (Resize, CreateImage, BuildIso,
// Convert, ImageInfo) against a real agent over mutual TLS: each documented repeat made REPEATS
// times, each documented error reason provoked. The chain RPCs are in images-chain.test.ts.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { call, ds } from '../support/agent/agent-fixture.js';
import { expectFailure, expectSameEveryTime, useConformanceAgent } from './support/conformance-agent.js';
import { loopingChain, makeImage, trackedImage } from './support/images.js';
import { MIB } from '../../common/src/units.js';
import { type CreateImageRequest, ImageFormat } from '../../proto/gen/onestorage/agent/v1/agent.js';

const {
  IMAGE_FORMAT_RAW: RAW,
  IMAGE_FORMAT_QCOW2: QCOW2,
  IMAGE_FORMAT_UNSPECIFIED: UNSPECIFIED,
} = ImageFormat;
/** A value this agent does not know (ts-proto's UNRECOGNIZED, -1 on the wire). */
const UNKNOWN = ImageFormat.UNRECOGNIZED;

const c = useConformanceAgent();
const { INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION } = grpc.status;

const image = (name: string): Promise<string> => trackedImage(c, name);
const loop = (vm: string): Promise<string> => loopingChain(c, vm);

describe('Resize', () => {
  it('grows to size_mb; a repeat finds that size and changes nothing', async () => {
    const path = await image('r1');
    const grown = await call(c.client.resize.bind(c.client), {
      path,
      sizeMb: 32,
      preallocate: false,
      format: QCOW2,
    });
    expect(grown).toEqual({ changed: true, virtualSize: 32 * MIB });
    const again = await expectSameEveryTime(() =>
      call(c.client.resize.bind(c.client), { path, sizeMb: 32, preallocate: false, format: QCOW2 }),
    );
    expect(again).toEqual({ changed: false, virtualSize: 32 * MIB });
  });

  it('shrinking is INVALID_ARGUMENT; so is a missing format, named', async () => {
    const path = await image('r2');
    await expectFailure(
      call(c.client.resize.bind(c.client), { path, sizeMb: 8, preallocate: false, format: QCOW2 }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
    );
    await expectFailure(
      call(c.client.resize.bind(c.client), { path, sizeMb: 32, preallocate: false, format: UNSPECIFIED }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /format/,
    );
  });

  it('a chain that loops is BAD_LAYOUT', async () => {
    const path = await loop('70');
    await expectFailure(
      call(c.client.resize.bind(c.client), { path, sizeMb: 32, preallocate: false, format: QCOW2 }),
      FAILED_PRECONDITION,
      'BAD_LAYOUT',
    );
  });
});

describe('CreateImage', () => {
  const req = (path: string, over: Partial<CreateImageRequest> = {}): CreateImageRequest => ({
    path,
    sizeMb: 8,
    format: QCOW2,
    filesystem: '',
    filesystemOptions: '',
    sparse: true,
    swap: false,
    ...over,
  });

  it('creates an empty image, parents included; a repeat replaces it with an identical one', async () => {
    c.tracker.track('0/71');
    const path = ds('0/71/disk.1');
    const r = await expectSameEveryTime(() => call(c.client.createImage.bind(c.client), req(path)));
    expect(r.virtualSize).toBe(8 * MIB);
    const swap = ds('0/71/disk.2');
    const s = await expectSameEveryTime(() =>
      call(c.client.createImage.bind(c.client), req(swap, { format: RAW, swap: true })),
    );
    expect(s.virtualSize).toBe(8 * MIB);
  });

  it('names the field and allowed values for an unknown format or filesystem, swap with a filesystem, a bad option', async () => {
    const path = ds('0/72/disk.1');
    c.tracker.track('0/72');
    for (const [over, field] of [
      [{ format: UNKNOWN }, /format must be one of raw, qcow2/],
      [{ format: UNSPECIFIED }, /format must be one of raw, qcow2/],
      [{ format: QCOW2, swap: true }, /format must be raw with swap/],
      [{ filesystem: 'ntfs3000' }, /filesystem/],
      [{ format: RAW, swap: true, filesystem: 'ext4' }, /filesystem|swap/],
      [{ filesystem: 'ext4', filesystemOptions: '-d /etc' }, /option/],
    ] as const) {
      await expectFailure(
        call(c.client.createImage.bind(c.client), req(path, over)),
        INVALID_ARGUMENT,
        'INVALID_ARGUMENT',
        field,
      );
    }
    expect(existsSync(c.local('0/72/disk.1'))).toBe(false);
  });
});

describe('BuildIso', () => {
  it('builds the ISO from inline content and a source file; a repeat builds the same ISO', async () => {
    c.tracker.track('0/73');
    mkdirSync(c.local('0/73'));
    writeFileSync(c.local('0/73/extra.txt'), 'extra');
    const path = ds('0/73/disk.9');
    const files = [
      { name: 'context.sh', content: Buffer.from("ETH0_IP='10.0.0.2'\n") },
      { name: 'extra.txt', source: ds('0/73/extra.txt') },
    ];
    const r = await expectSameEveryTime(() =>
      call(c.client.buildIso.bind(c.client), { path, label: 'CONTEXT', files }),
    );
    expect(r.bytes).toBeGreaterThan(0);
    expect(readFileSync(c.local('0/73/disk.9')).subarray(0x8001, 0x8006).toString()).toBe('CD001');
  });

  it('refuses a bad label, a bad or repeated name, an entry with no data (INVALID_ARGUMENT); a missing source (NOT_FOUND)', async () => {
    c.tracker.track('0/74');
    mkdirSync(c.local('0/74/dir'), { recursive: true });
    const path = ds('0/74/disk.9');
    const one = { name: 'a', content: Buffer.from('a') };
    for (const [label, files, field] of [
      ['', [one], /label/],
      ['L'.repeat(33), [one], /label/],
      ['bad label', [one], /label/],
      ['OK', [{ name: 'a/b', content: Buffer.from('x') }], /name/],
      ['OK', [one, one], /name|twice/],
      ['OK', [{ name: 'empty' }], /source|content/],
      ['OK', [{ name: 'd', source: ds('0/74/dir') }], /regular file|dir/],
    ] as const) {
      await expectFailure(
        call(c.client.buildIso.bind(c.client), { path, label, files: [...files] }),
        INVALID_ARGUMENT,
        'INVALID_ARGUMENT',
        field,
      );
    }
    await expectFailure(
      call(c.client.buildIso.bind(c.client), {
        path,
        label: 'OK',
        files: [{ name: 'm', source: ds('0/74/missing') }],
      }),
      NOT_FOUND,
      'NOT_FOUND',
    );
    expect(existsSync(c.local('0/74/disk.9'))).toBe(false);
  });
});

describe('Convert', () => {
  const req = (source: string, destination: string, over: Record<string, unknown> = {}) => ({
    source,
    destination,
    format: RAW,
    sparse: true,
    snapshot: undefined,
    imageCurrentState: false,
    sourceFormat: QCOW2,
    ...over,
  });

  it('writes a standalone copy; a repeat replaces it with an identical one', async () => {
    const source = await image('cv1');
    const destination = ds(c.tracker.track('1/cv1-copy'));
    const r = await expectSameEveryTime(() =>
      call(c.client.convert.bind(c.client), req(source, destination)),
    );
    expect(r.virtualSize).toBe(16 * MIB);
  });

  it('refuses another format, the source as destination (INVALID_ARGUMENT); a missing source or snapshot (NOT_FOUND); a loop (BAD_LAYOUT)', async () => {
    const source = await image('cv2');
    const destination = ds(c.tracker.track('1/cv2-copy'));
    await expectFailure(
      call(c.client.convert.bind(c.client), req(source, destination, { format: UNKNOWN })),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /format/,
    );
    await expectFailure(
      call(c.client.convert.bind(c.client), req(source, source)),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
    );
    await expectFailure(
      call(c.client.convert.bind(c.client), req(ds('1/missing'), destination)),
      NOT_FOUND,
      'NOT_FOUND',
    );
    await expectFailure(
      call(
        c.client.convert.bind(c.client),
        req(source, destination, { snapshot: { snapDir: '', snapId: 4 } }),
      ),
      NOT_FOUND,
      'NOT_FOUND',
    );
    await expectFailure(
      call(c.client.convert.bind(c.client), req(await loop('75'), destination)),
      FAILED_PRECONDITION,
      'BAD_LAYOUT',
    );
    await expectFailure(
      call(c.client.convert.bind(c.client), req('/etc/hostname', destination)),
      PERMISSION_DENIED,
      'PATH_OUTSIDE_ROOTS',
    );
    expect(existsSync(c.local('1/cv2-copy'))).toBe(false);
  });
});

describe('ImageInfo', () => {
  it('describes every layer; read-only, so a repeat gives the same', async () => {
    const base = await image('ii1');
    c.tracker.track('0/76');
    await makeImage(c.local('0/76/disk.0'), 'qcow2', 16, { name: c.local('1/ii1'), format: 'qcow2' });
    const r = await expectSameEveryTime(() =>
      call(c.client.imageInfo.bind(c.client), { path: ds('0/76/disk.0'), format: QCOW2 }),
    );
    expect(r.layers).toHaveLength(2);
    // Layer names are this host's paths (what qemu-img reports).
    expect(r.layers[1]?.filename).toMatch(new RegExp(`/${base.slice(ds('').length)}$`));
  });

  it('a missing path is NOT_FOUND; a loop BAD_LAYOUT; a missing backing file NOT_FOUND', async () => {
    await expectFailure(
      call(c.client.imageInfo.bind(c.client), { path: ds('1/missing'), format: QCOW2 }),
      NOT_FOUND,
      'NOT_FOUND',
    );
    await expectFailure(
      call(c.client.imageInfo.bind(c.client), { path: await loop('77'), format: QCOW2 }),
      FAILED_PRECONDITION,
      'BAD_LAYOUT',
    );
    // A missing backing file is NOT_FOUND naming the backing name, as the error model's NOT_FOUND
    // ("the source of a read does not exist") says.
    await makeImage(c.local('0/77/orphan'), 'qcow2', 16, { name: 'gone', format: 'qcow2' });
    await expectFailure(
      call(c.client.imageInfo.bind(c.client), { path: ds('0/77/orphan'), format: QCOW2 }),
      NOT_FOUND,
      'NOT_FOUND',
      /backing file "gone"/,
    );
  });
});
