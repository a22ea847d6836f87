import { generateKeyPairSync } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MessageEncoder, encodeMessages } from './wire.js';

const header = { type: 'MONITOR_VM' as const, status: 'SUCCESS' as const, hostId: 7, timestamp: 9 };

/** VM lines whose figures vary with `round` for every `every`-th VM. */
function lines(count: number, round: number, every: number): string[] {
  return Array.from(
    { length: count },
    (_, i) => `VM = [ ID=${i}, MONITOR="${'QUJD'.repeat(i % 7)}${i % every === 0 ? round : 0}${i * 13}" ]`,
  );
}

function decoded(messages: readonly string[]): string[] {
  return messages.flatMap((m) =>
    inflateSync(Buffer.from(m.trimEnd().split(' ')[4] as string, 'base64'))
      .toString()
      .trimEnd()
      .split('\n'),
  );
}

/** Accented letters in no order (a linear congruential sequence from `seed`): they compress badly. */
function noise(seed: number, length: number): string {
  let x = seed;
  let text = '';
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    text += String.fromCharCode(0xe0 + ((x >> 16) % 31));
  }
  return text;
}

/** 4,000 bytes of UTF-8 that compress to well over 600. */
const NOISY = noise(1, 2000);

describe('MessageEncoder', () => {
  it('gives what encodeMessages gives, call after call, as lines change a little, come and go', () => {
    const encoder = new MessageEncoder();
    const rounds: Array<{ lines: string[]; maxBytes: number; timestamp: number }> = [
      { lines: lines(300, 0, 10), maxBytes: 600, timestamp: 9 },
      { lines: lines(300, 0, 10), maxBytes: 600, timestamp: 9 }, // unchanged: every part reused
      { lines: lines(300, 1, 10), maxBytes: 600, timestamp: 10 }, // a tenth changed, longer prefix
      { lines: lines(300, 1, 100), maxBytes: 600, timestamp: 10 },
      { lines: lines(301, 1, 100), maxBytes: 600, timestamp: 10 }, // one more line: nothing reused
      { lines: [...lines(20, 2, 3), NOISY, 'ü'], maxBytes: 600, timestamp: 10 }, // too large, UTF-8
      { lines: [], maxBytes: 600, timestamp: 10 },
      { lines: lines(50, 3, 2), maxBytes: 65_507, timestamp: 1 },
    ];
    for (const r of rounds) {
      const h = { ...header, timestamp: r.timestamp };
      const fresh = encodeMessages(h, r.lines, { maxBytes: r.maxBytes });
      const got = encoder.encode(h, r.lines, { maxBytes: r.maxBytes });
      expect(got).toEqual(fresh);
      expect(got.tooLarge).toEqual(r.lines.includes(NOISY) ? [NOISY] : []);
      expect(decoded(got.messages)).toEqual(r.lines.filter((l) => !got.tooLarge.includes(l)));
      for (const m of got.messages) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(r.maxBytes);
    }
  });

  it('splits again a part that no longer fits, and joins parts that now fit together', () => {
    const encoder = new MessageEncoder();
    const some = lines(120, 0, 5);
    const first = encoder.encode(header, some, { maxBytes: 900 });
    expect(first).toEqual(encodeMessages(header, some, { maxBytes: 900 }));
    // The same lines: the largest message that fit is now one byte too long; then all fit in one.
    const tighter = Math.max(...first.messages.map((m) => Buffer.byteLength(m))) - 1;
    for (const maxBytes of [tighter, 65_507])
      expect(encoder.encode(header, some, { maxBytes })).toEqual(encodeMessages(header, some, { maxBytes }));
  });

  it('splits a part that was far too large without compressing it; every line still gets through', () => {
    const encoder = new MessageEncoder();
    const long = lines(300, 0, 1).map((l, i) => `${l}${noise(i + 2, 40)}`);
    encoder.encode(header, long, { maxBytes: 2000 });
    // The same number of lines, now far shorter: all would fit in one message.
    const short = Array.from({ length: 300 }, (_, i) => `VM = [ ID=${i} ]`);
    const got = encoder.encode(header, short, { maxBytes: 2000 });
    expect(encodeMessages(header, short, { maxBytes: 2000 }).messages).toHaveLength(1);
    expect(got.messages.length).toBeGreaterThan(1);
    expect(decoded(got.messages)).toEqual(short);
    for (const m of got.messages) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(2000);
    // The same lines again: the parts not measured are, and it is back to what encodeMessages gives.
    expect(encoder.encode(header, short, { maxBytes: 2000 })).toEqual(
      encodeMessages(header, short, { maxBytes: 2000 }),
    );
  });

  it('with a public key, encrypts every call afresh', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const encoder = new MessageEncoder();
    const some = lines(10, 0, 2);
    const a = encoder.encode(header, some, { publicKey });
    const b = encoder.encode(header, some, { publicKey });
    expect(a.messages).toHaveLength(1);
    // PKCS#1 v1.5 pads at random: a payload reused would be the same bytes.
    expect(b.messages[0]).not.toBe(a.messages[0]);
  });
});
