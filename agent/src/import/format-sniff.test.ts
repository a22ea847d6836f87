import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FORMAT_HEAD_BYTES, sniffFormat } from './format-sniff.js';

const dir = mkdtempSync(join(tmpdir(), 'format-sniff-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MIB = 1024 * 1024;

/** The start of a LUKS1 header: magic, version 1, cipher "aes", mode "xts-plain64", hash "sha256". */
function luks1Header(): Buffer {
  const h = Buffer.alloc(592);
  Buffer.from('LUKS\xba\xbe', 'latin1').copy(h, 0);
  h.writeUInt16BE(1, 6);
  h.write('aes', 8, 'latin1');
  h.write('xts-plain64', 40, 'latin1');
  h.write('sha256', 72, 'latin1');
  h.writeUInt32BE(4096, 104); // payload offset, in sectors
  h.writeUInt32BE(64, 108); // key bytes
  return h;
}

/** The first bytes of a file the real tool made in `dir`. */
function made(name: string, tool: string, ...args: string[]): Buffer {
  execFileSync(tool, args, { cwd: dir, stdio: 'pipe' });
  const whole = readFileSync(join(dir, name));
  return whole.subarray(0, FORMAT_HEAD_BYTES);
}
const qemuImg = (name: string, ...args: string[]): Buffer => made(name, 'qemu-img', 'create', '-q', ...args);

describe('sniffFormat', () => {
  it.each([
    ['qcow2 v3', () => qemuImg('a.qcow2', '-f', 'qcow2', 'a.qcow2', '3M'), 3, 3],
    [
      'qcow2 v2 (compat 0.10)',
      () => qemuImg('b.qcow2', '-f', 'qcow2', '-o', 'compat=0.10', 'b.qcow2', '2M'),
      2,
      2,
    ],
  ])('reads a %s header made by qemu-img', (_t, make, version, mib) => {
    const s = sniffFormat(make());
    expect(s).toMatchObject({
      kind: 'qcow2',
      header: { version, virtualSize: BigInt(mib * MIB), backingFileOffset: 0n, externalDataFile: false },
    });
  });

  it('sees the backing file and the external data file of a qcow2', () => {
    qemuImg('base.raw', '-f', 'raw', 'base.raw', '1M');
    const top = sniffFormat(qemuImg('top.qcow2', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', 'top.qcow2'));
    expect(top.kind === 'qcow2' && top.header.backingFileOffset).toBeGreaterThan(0n);
    const data = sniffFormat(qemuImg('d.qcow2', '-f', 'qcow2', '-o', 'data_file=d.data', 'd.qcow2', '1M'));
    expect(data).toMatchObject({ kind: 'qcow2', header: { externalDataFile: true } });
  });

  it.each([
    ['vmdk', 'vmdk', [], 4 * MIB],
    ['vmdk (streamOptimized)', 'vmdk', ['-o', 'subformat=streamOptimized'], 4 * MIB],
    ['vdi', 'vdi', [], 4 * MIB],
    ['vpc', 'vpc', [], undefined],
    ['qed', 'qed', [], 4 * MIB],
    ['vhdx', 'vhdx', [], undefined],
  ] as const)('recognises %s made by qemu-img', (title, format, opts, size) => {
    const name = `${title.replace(/\W/g, '')}.img`;
    const s = sniffFormat(qemuImg(name, '-f', format, ...opts, name, '4M'));
    expect(s.kind).toBe(format);
    if (size !== undefined) expect(s).toMatchObject({ virtualSize: BigInt(size) });
  });

  it('a fixed VHD (footer only at the end) and an ISO are raw', () => {
    expect(sniffFormat(qemuImg('f.vhd', '-f', 'vpc', '-o', 'subformat=fixed', 'f.vhd', '1M'))).toEqual({
      kind: 'raw',
    });
    writeFileSync(join(dir, 'in.txt'), 'hello');
    expect(sniffFormat(made('x.iso', 'genisoimage', '-quiet', '-o', 'x.iso', 'in.txt'))).toEqual({
      kind: 'raw',
    });
    expect(sniffFormat(Buffer.alloc(4096))).toEqual({ kind: 'raw' });
  });

  it.each([
    ['an empty file', () => Buffer.alloc(0), /it is empty/],
    [
      'a tar archive',
      () => made('t.tar', 'tar', 'cf', 't.tar', 'in.txt'),
      /tar archive: archives are not supported/,
    ],
    [
      'a zip archive',
      () => made('z.zip', 'zip', '-q', 'z.zip', 'in.txt'),
      /zip archive: archives are not supported/,
    ],
    [
      'a VMDK descriptor',
      () => qemuImg('flat.vmdk', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', 'flat.vmdk', '1M'),
      /VMDK descriptor/,
    ],
    [
      // A LUKS1 header laid out as its on-disk format specifies. `qemu-img create -f luks`
      // is not used: it times a PBKDF self-benchmark with the thread's CPU clock and, on a
      // busy machine, aborts with "Unable to get accurate CPU usage" when that clock reads 0 ms.
      'a LUKS volume',
      () => luks1Header(),
      /LUKS/,
    ],
    [
      'a qcow (version 1) image',
      () => qemuImg('old.qcow', '-f', 'qcow', 'old.qcow', '1M'),
      /qcow2 version 1 is not supported/,
    ],
    ['a cut qcow2 header', () => Buffer.from('QFI\xfb\0\0\0\x03', 'latin1'), /cut short/],
  ])('refuses %s, saying why', (_t, make, why) => {
    writeFileSync(join(dir, 'in.txt'), 'hello');
    const s = sniffFormat(make());
    expect(s.kind).toBe('refused');
    expect(s.kind === 'refused' && s.why).toMatch(why);
  });

  it('refuses a KDMV header that defers to its descriptor, and a VMDK naming a parent', () => {
    const head = Buffer.from(qemuImg('p.vmdk', '-f', 'vmdk', 'p.vmdk', '1M'));
    const zeroCapacity = Buffer.from(head);
    zeroCapacity.writeBigUInt64LE(0n, 12);
    expect(sniffFormat(zeroCapacity)).toMatchObject({
      kind: 'refused',
      why: expect.stringMatching(/defers to a descriptor/) as unknown,
    });
    const descriptorAt = Number(head.readBigUInt64LE(28)) * 512;
    const withParent = Buffer.from(head);
    withParent.write('parentFileNameHint="base.vmdk"\n', descriptorAt + 30, 'latin1');
    expect(sniffFormat(withParent)).toMatchObject({
      kind: 'refused',
      why: expect.stringMatching(/parent/) as unknown,
    });
  });
});
