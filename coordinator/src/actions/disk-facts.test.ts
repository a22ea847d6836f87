import { describe, expect, it } from 'vitest';
import { VmDisk } from '../oned/vm-disk.js';
import { ImageFormat } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { ActionContext } from './action-context.js';
import { copyFormat, diskFormat, imageFormat, parseDiskArg, snapDirFor } from './disk-facts.js';

const disk = (attrs: Record<string, string>): VmDisk => new VmDisk(7, 1, attrs);
const ctx = (driver: string, action: string): ActionContext => ({ driver, action }) as ActionContext;
/** The contract's values, spelled out so the tests do not check imageFormat against itself. */
const WIRE = { raw: ImageFormat.IMAGE_FORMAT_RAW, qcow2: ImageFormat.IMAGE_FORMAT_QCOW2 } as const;

describe('disk facts', () => {
  it('parseDiskArg gives the disk id and refuses a VM directory', () => {
    expect(parseDiskArg('host01:/var/lib/one/datastores/0/7/disk.12', 'disk')).toEqual({
      host: 'host01',
      path: '/var/lib/one/datastores/0/7/disk.12',
      diskId: 12,
    });
    expect(() => parseDiskArg('host01:/var/lib/one/datastores/0/7', 'disk')).toThrowError(
      'argument disk "host01:/var/lib/one/datastores/0/7" does not name disk.N',
    );
  });

  it.each([
    ['qcow2', WIRE.qcow2],
    ['QCOW2', WIRE.qcow2],
    ['raw', WIRE.raw],
    ['Raw', WIRE.raw],
    ['vmdk', undefined],
    ['swap', undefined],
    ['', undefined],
  ] as const)('imageFormat(%j) = %s: the one map from oned format names to the contract', (name, format) => {
    expect(imageFormat(name)).toBe(format);
  });

  it.each([
    [{ IMAGE_ID: '3', FORMAT: 'qcow2', DRIVER: 'raw' }, 'qcow2'],
    [{ IMAGE_ID: '3', FORMAT: 'RAW' }, 'raw'],
    [{ IMAGE_ID: '3', DRIVER: 'qcow2' }, 'qcow2'],
    [{ TYPE: 'swap', SIZE: '64' }, 'raw'],
    [{ TYPE: 'fs', SIZE: '64' }, 'raw'],
    [{ TYPE: 'fs', FORMAT: 'qcow2' }, 'qcow2'],
  ] as const)('diskFormat(%j) = %s: what oned knows, never the image', (attrs, format) => {
    expect(diskFormat(disk(attrs), 'VM 7 DISK 1')).toBe(WIRE[format]);
  });

  it('diskFormat refuses an unknown format, an image disk without one, and no disk', () => {
    expect(() => diskFormat(disk({ IMAGE_ID: '3', FORMAT: 'vmdk' }), 'x')).toThrowError(
      'VM 7 DISK 1 FORMAT is "vmdk"; only raw and qcow2 are supported',
    );
    expect(() => diskFormat(disk({ IMAGE_ID: '3' }), 'x')).toThrowError(
      'VM 7 DISK 1 has neither FORMAT nor DRIVER: its image format is unknown',
    );
    expect(() => diskFormat(undefined, 'VM 7 disk.9')).toThrowError(
      'VM 7 disk.9: no DISK to take the image format from',
    );
  });

  it.each([
    [{ FORMAT: 'qcow2' }, 'qcow2'],
    [{ FORMAT: 'QCOW2' }, 'qcow2'],
    [{ FORMAT: 'raw' }, 'raw'],
    [{}, 'raw'],
  ] as const)('copyFormat(%j) = %s', (attrs, format) => {
    expect(copyFormat(disk(attrs))).toBe(WIRE[format]);
  });

  it.each([
    [
      'grpc_qcow2',
      'snap_create',
      { CLONE: 'NO', SOURCE: '/var/lib/one//datastores/1/abc' },
      '/var/lib/one/datastores/1/abc.snap',
    ],
    ['grpc_qcow2', 'snap_create', { CLONE: 'YES', SOURCE: '/var/lib/one/datastores/1/abc' }, ''],
    ['grpc_qcow2', 'snap_create.ssh', { CLONE: 'NO', SOURCE: '/var/lib/one/datastores/1/abc' }, ''],
    ['grpc', 'snap_create', { CLONE: 'NO', SOURCE: '/var/lib/one/datastores/1/abc' }, ''],
  ])('snapDirFor(%s %s, %j) = "%s"', (driver, action, attrs, dir) => {
    expect(snapDirFor(ctx(driver, action), disk(attrs))).toBe(dir);
  });
});
