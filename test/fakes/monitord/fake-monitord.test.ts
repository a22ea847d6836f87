import { createConnection } from 'node:net';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { MonitordSender } from '../../../common/src/monitord/monitord-sender.js';
import { encodeMessage, encodeMessages } from '../../../common/src/monitord/wire.js';
import { FakeMonitord } from './fake-monitord.js';
import { parseTemplate, scalar, vectors } from './template.js';

/** Reference 3.1's example, computed there with python zlib + base64. */
const REFERENCE_EXAMPLE =
  'MONITOR_VM SUCCESS 3 1724140800 eNoL81WwVYhW8HSxVTI0UtJRcHEN8PGPjAfx8/NSdcFivv5+niH+QbZKQa45IcGGliHBYQVuni4G6eGVTl5BLgblPs5OYLGAELcUJYVYLgC6lBc3';

let fake: FakeMonitord | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function sendUdp(port: number, lines: string[]): Promise<void> {
  const sender = new MonitordSender({ address: '127.0.0.1', port });
  try {
    await sender.send(lines);
  } finally {
    await sender.close();
  }
}

describe('template parser', () => {
  it('reads scalars, quoted values and one-line and multi-line vectors, collecting repeats', () => {
    const t = parseTemplate(
      'DS_LOCATION_USED_MB=12\nA = "x y"\nDS = [ ID=0, USED_MB=1 ]\nDS = [\n  ID = 100,\n  USED_MB = 2 ]\nUSED_MB=1 FREE_MB=2',
    );
    expect(scalar(t, 'DS_LOCATION_USED_MB')).toBe('12');
    expect(scalar(t, 'A')).toBe('x y');
    expect(vectors(t, 'DS')).toEqual([
      { ID: '0', USED_MB: '1' },
      { ID: '100', USED_MB: '2' },
    ]);
    expect(scalar(t, 'FREE_MB')).toBe('2');
  });

  it('refuses an unterminated vector', () => {
    expect(() => parseTemplate('DS = [ ID=1')).toThrow(/unterminated/);
  });
});

describe('fake monitord', () => {
  it("decodes the reference's example message over UDP and merges the VM's MONITOR", async () => {
    fake = await FakeMonitord.start();
    await sendUdp(fake.port, [`${REFERENCE_EXAMPLE}\n`]);
    await fake.waitFor('the example', () => fake!.accepted.length === 1);
    expect(fake.accepted[0]).toMatchObject({ type: 'MONITOR_VM', hostId: 3, timestamp: 1724140800 });
    expect(fake.diskSizes(12)).toEqual({ disks: { 0: 1 }, snapshots: {} });
  });

  it('takes one message per TCP connection', async () => {
    fake = await FakeMonitord.start();
    const line = encodeMessage({
      type: 'SYSTEM_HOST',
      status: 'SUCCESS',
      hostId: 1,
      timestamp: 5,
      data: 'X=1\n',
    });
    await new Promise<void>((resolve, reject) => {
      const c = createConnection({ host: '127.0.0.1', port: fake!.port }, () => c.end(line));
      c.on('close', () => resolve());
      c.on('error', reject);
    });
    await fake.waitFor('the TCP message', () => fake!.accepted.length === 1);
    expect(fake.accepted[0]?.transport).toBe('tcp');
    expect(scalar(fake.systemHost.get(1)!, 'X')).toBe('1');
  });

  it('decrypts RSA payloads split into (modulus - 11)-byte chunks', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    fake = await FakeMonitord.start({ privateKey });
    // 500 bytes: more than one 117-byte PKCS#1 chunk of a 1024-bit key.
    const data = `${Array.from({ length: 25 }, (_, i) => `DS = [ ID=${i}, USED_MB=${i * 7} ]`).join('\n')}\n`;
    const line = encodeMessage(
      { type: 'SYSTEM_HOST', status: 'SUCCESS', hostId: 4, timestamp: 9, data },
      publicKey,
    );
    await sendUdp(fake.port, [line]);
    await fake.waitFor('the encrypted message', () => fake!.accepted.length === 1);
    expect(fake.accepted[0]?.data).toBe(data);
    expect(fake.accepted[0]?.decrypted).toBe(true);
    expect(vectors(fake.systemHost.get(4)!, 'DS')).toHaveLength(25);
  });

  it('drops older messages per host and type, unknown hosts, bad payloads; ts 0 passes', async () => {
    fake = await FakeMonitord.start({ knownHosts: [1, 2] });
    const msg = (type: 'MONITOR_VM' | 'SYSTEM_HOST', hostId: number, timestamp: number): string =>
      encodeMessage({ type, status: 'SUCCESS', hostId, timestamp, data: 'A=1\n' });
    await sendUdp(fake.port, [
      msg('SYSTEM_HOST', 1, 100),
      msg('SYSTEM_HOST', 1, 99), // older, same host and type: dropped
      msg('MONITOR_VM', 1, 50), // another type: its own gate
      msg('SYSTEM_HOST', 2, 10), // another host: its own gate
      msg('SYSTEM_HOST', 7, 200), // unknown host
      msg('MONITOR_VM', -1, 0), // ts 0: no checks
      'MONITOR_VM SUCCESS 1 300 bm90IHpsaWI=\n', // "not zlib"
    ]);
    await fake.waitFor('7 messages', () => fake!.accepted.length + fake!.dropped.length === 7);
    expect(fake.accepted.map((m) => `${m.type}/${m.hostId}/${m.timestamp}`)).toEqual([
      'SYSTEM_HOST/1/100',
      'MONITOR_VM/1/50',
      'SYSTEM_HOST/2/10',
      'MONITOR_VM/-1/0',
    ]);
    expect(fake.dropped.map((d) => d.reason)).toEqual(['out-of-order', 'unknown-host', 'inflate']);
  });

  it('a payload that would pass 64 KiB is split between lines; every part gets through', async () => {
    fake = await FakeMonitord.start();
    // Random bytes do not compress: 3,000 such lines make one message far above 64 KiB.
    const lines = Array.from(
      { length: 3000 },
      (_, i) =>
        `VM = [ ID=${i}, MONITOR="${Buffer.from(`DISK_SIZE = [ ID=0, SIZE=${i} ]\nNOISE="${randomBytes(24).toString('hex')}"\n`).toString('base64')}" ]`,
    );
    const whole = encodeMessage({
      type: 'MONITOR_VM',
      status: 'SUCCESS',
      hostId: 1,
      timestamp: 1,
      data: lines.join('\n'),
    });
    expect(Buffer.byteLength(whole)).toBeGreaterThanOrEqual(65_536);
    const { messages } = encodeMessages(
      { type: 'MONITOR_VM', status: 'SUCCESS', hostId: 1, timestamp: 2 },
      lines,
    );
    expect(messages.length).toBeGreaterThan(1);
    for (const m of messages) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(65_507);
    await sendUdp(fake.port, messages);
    await fake.waitFor('every part', () => fake!.accepted.length === messages.length);
    expect(fake.vms.size).toBe(3000);
    expect(fake.diskSizes(2999).disks).toEqual({ 0: 2999 });
  });
});
