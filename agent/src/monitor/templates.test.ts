import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { encodeMessage, encodeMessages } from '../../../common/src/monitord/wire.js';
import { filesystemCapacity } from './capacity.js';
import { systemHostLines, vmLine, vmMonitorText } from './templates.js';

const VM = {
  vmId: 12,
  disks: [
    { diskId: 0, sizeMb: 5, snapshots: [{ id: 10, sizeMb: 2 }] },
    { diskId: 1, sizeMb: 1, snapshots: [] },
  ],
};

describe('monitoring templates', () => {
  it('prints DISK_SIZE and SNAPSHOT_SIZE as tm/local/monitor_ds does, inside a base64 VM line', () => {
    const text =
      'DISK_SIZE = [ ID=0, SIZE=5 ]\nSNAPSHOT_SIZE = [ ID=10, DISK_ID=0, SIZE=2 ]\nDISK_SIZE = [ ID=1, SIZE=1 ]\n';
    expect(vmMonitorText(VM)).toBe(text);
    expect(vmLine(VM)).toBe(`VM = [ ID=12, MONITOR="${Buffer.from(text).toString('base64')}" ]`);
  });

  it('prints the DS_LOCATION_* figures and one DS vector per datastore', () => {
    expect(
      systemHostLines({ usedMb: 1, totalMb: 3, freeMb: 2 }, [{ id: 100, usedMb: 4, totalMb: 6, freeMb: 5 }]),
    ).toEqual([
      'DS_LOCATION_USED_MB=1',
      'DS_LOCATION_TOTAL_MB=3',
      'DS_LOCATION_FREE_MB=2',
      'DS = [ ID=100, USED_MB=4, TOTAL_MB=6, FREE_MB=5 ]',
    ]);
  });

  it('reads capacity as df -B1M -P does', async () => {
    const { stdout } = await runTool('df', ['-B1M', '-P', '/tmp']);
    const cols = (stdout.trim().split('\n')[1] ?? '').split(/\s+/);
    const [total, used, free] = [Number(cols[1]), Number(cols[2]), Number(cols[3])];
    const c = await filesystemCapacity('/tmp');
    expect(c.totalMb).toBe(total);
    // Used and free move while other processes write: within 64 MiB of df's.
    expect(Math.abs(c.usedMb - used)).toBeLessThan(64);
    expect(Math.abs(c.freeMb - free)).toBeLessThan(64);
  });
});

describe('monitord wire format', () => {
  it('writes TYPE STATUS HOST_ID TIMESTAMP base64(zlib(data)), zlib with its header', () => {
    const line = encodeMessage({
      type: 'MONITOR_VM',
      status: 'SUCCESS',
      hostId: 3,
      timestamp: 1724140800,
      data: 'A=1\n',
    });
    const [type, status, host, ts, payload] = line.trimEnd().split(' ');
    expect([type, status, host, ts]).toEqual(['MONITOR_VM', 'SUCCESS', '3', '1724140800']);
    const raw = Buffer.from(payload as string, 'base64');
    expect(raw[0]).toBe(0x78); // zlib header
    expect(inflateSync(raw).toString()).toBe('A=1\n');
    expect(line.endsWith('\n')).toBe(true);
  });

  it('encrypts before compressing, in modulus-sized ciphertext blocks', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const data = 'X'.repeat(300); // three 117-byte chunks
    const line = encodeMessage(
      { type: 'SYSTEM_HOST', status: 'SUCCESS', hostId: 1, timestamp: 1, data },
      publicKey,
    );
    const cipher = inflateSync(Buffer.from(line.trimEnd().split(' ')[4] as string, 'base64'));
    expect(cipher.length).toBe(3 * 128);
  });

  it('splits between lines to stay under the limit and sets aside a line that cannot fit alone', () => {
    const header = { type: 'MONITOR_VM' as const, status: 'SUCCESS' as const, hostId: 1, timestamp: 1 };
    const lines = Array.from(
      { length: 40 },
      (_, i) => `VM = [ ID=${i}, MONITOR="${'ab'.repeat(i)}${i * 31}" ]`,
    );
    // Random hex does not compress: this line alone is far over 300 bytes.
    const huge = `VM = [ ID=99, MONITOR="${randomBytes(400).toString('hex')}" ]`;
    const { messages, tooLarge } = encodeMessages(header, [...lines, huge], { maxBytes: 300 });
    expect(messages.length).toBeGreaterThan(1);
    for (const m of messages) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(300);
    const back = messages.flatMap((m) =>
      inflateSync(Buffer.from(m.trimEnd().split(' ')[4] as string, 'base64'))
        .toString()
        .trimEnd()
        .split('\n'),
    );
    expect(back).toEqual(lines);
    expect(tooLarge).toEqual([huge]);
  });
});
