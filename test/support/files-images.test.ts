// imageInfo and imagesIdentical (test/support/files.ts) open each image as the format they are
// told, never as the format its bytes suggest: real qemu-img on real images.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../../common/src/tools/run-tool.js';
import { MIB, makeImage } from '../../cli/src/demo/demo-images.js';
import { makeTempDir } from './agent/agent-fixture.js';
import { imageInfo, imagesIdentical } from './files.js';

let base = '';
const qcow2 = (): string => join(base, 'disk.qcow2');
/** The guest-visible content of qcow2(), as a raw image. */
const raw = (): string => join(base, 'disk.raw');

beforeAll(async () => {
  base = await makeTempDir('files-images-');
  await makeImage(qcow2(), 'qcow2', 4, 0x5a);
  await runTool('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow2(), raw()]);
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('imageInfo', () => {
  it('describes the image as the format it is told: a qcow2 file read as raw is raw bytes', async () => {
    expect(await imageInfo(qcow2(), 'qcow2')).toMatchObject({ format: 'qcow2', 'virtual-size': 4 * MIB });
    const asRaw = await imageInfo(qcow2(), 'raw');
    expect(asRaw.format).toBe('raw');
    expect(asRaw['virtual-size']).toBeLessThan(4 * MIB);
  });

  it('fails for a file that is not of that format', async () => {
    await expect(imageInfo(raw(), 'qcow2')).rejects.toThrow(/qcow2/);
  });
});

describe('imagesIdentical', () => {
  it('compares the guest-visible contents of each image opened as its own format', async () => {
    expect(await imagesIdentical(qcow2(), 'qcow2', raw(), 'raw')).toBe(true);
    expect(await imagesIdentical(raw(), 'raw', qcow2(), 'qcow2')).toBe(true);
  });

  it('is false when a format is wrong: the qcow2 file read as raw bytes, or a raw file as qcow2', async () => {
    expect(await imagesIdentical(qcow2(), 'raw', raw(), 'raw')).toBe(false);
    expect(await imagesIdentical(qcow2(), 'qcow2', raw(), 'qcow2')).toBe(false);
  });
});
