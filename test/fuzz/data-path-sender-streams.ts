// The frames a sender sends after the handshake (MANIFEST, DATA, FILE_DONE, END), rendered from a
// generated tree with the session's real key, then broken the ways a hostile or failing sender
// could: a flipped data byte, a wrong digest or MAC, data beyond the manifest or missing, frames
// dropped, duplicated, swapped, retyped or inserted, lengths out of range, an ERROR with a hostile
// message, and a connection closed at any byte.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { TranscriptMac } from '../../agent/src/transfer/session-keys.js';
import { FrameType, HEADER_BYTES } from '../../agent/src/transfer/wire.js';
import {
  dataOf,
  manifestMutations,
  manifestText,
  trees,
  type ManifestMutation,
  type Tree,
} from './data-path-trees.js';

interface Frame {
  type: number;
  payload: Buffer;
  /** The length field as sent, when it lies about the payload. */
  length?: number;
}

export type StreamMutation =
  | { k: 'none' }
  | { k: 'flipData'; at: number; bit: number }
  | { k: 'wrongDigest'; at: number }
  | { k: 'wrongMac' }
  | { k: 'extraData'; at: number; bytes: number }
  | { k: 'drop' | 'duplicate'; at: number }
  | { k: 'swap'; at: number; with: number }
  | { k: 'retype'; at: number; type: number }
  | { k: 'relength'; at: number; length: 'zero' | 'max' | 'sign' | 'plus1' | 'minus1' | 'huge' }
  | { k: 'insert'; at: number; type: number; payload: string }
  | { k: 'senderError'; at: number; reason: unknown; message: unknown };

/** What the handshake's CHALLENGE becomes. */
export type ChallengeMutation =
  'valid' | 'missing' | 'twice' | 'notJson' | 'shortNonce' | 'empty' | 'garbage';

export interface SenderCase {
  tree: Tree;
  manifest: ManifestMutation;
  challenge: ChallengeMutation;
  stream: StreamMutation;
  /** Close after this fraction of the post-handshake bytes (1: all of them). */
  cut: number;
  /** Close with a reset instead of a clean end (bytes not yet sent are lost). */
  reset: boolean;
}

const TYPES = Object.values(FrameType) as number[];
const anyType = fc.oneof(fc.constantFrom(...TYPES), fc.integer({ min: 0, max: 255 }));

const streams: fc.Arbitrary<StreamMutation> = fc.oneof(
  { weight: 8, arbitrary: fc.constant({ k: 'none' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('flipData' as const),
      at: fc.nat(),
      bit: fc.integer({ min: 0, max: 7 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('wrongDigest' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ k: 'wrongMac' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('extraData' as const),
      at: fc.nat(),
      bytes: fc.integer({ min: 1, max: 70_000 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constantFrom('drop' as const, 'duplicate' as const), at: fc.nat() }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('swap' as const), at: fc.nat(), with: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('retype' as const), at: fc.nat(), type: anyType }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('relength' as const),
      at: fc.nat(),
      length: fc.constantFrom(
        'zero' as const,
        'max' as const,
        'sign' as const,
        'plus1' as const,
        'minus1' as const,
        'huge' as const,
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('insert' as const),
      at: fc.nat(),
      type: anyType,
      payload: fc.oneof(
        fc.constantFrom('', '{}', '{"nonce":"00"}', '{"version":1,"entries":[]}'),
        fc.string({ maxLength: 32 }),
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('senderError' as const),
      at: fc.nat(),
      reason: fc.constantFrom<unknown>(
        'TRANSFER_FAILED',
        'NO_SPACE',
        'INTERNAL',
        'NOT_A_REASON',
        '__proto__',
        7,
        undefined,
      ),
      message: fc.constantFrom<unknown>(
        'disk on fire',
        'line one\nline two\r\n\tthree',
        'x'.repeat(60_000),
        42,
        null,
        undefined,
      ),
    }),
  },
);

export const senderCases: fc.Arbitrary<SenderCase> = fc.record({
  tree: trees,
  manifest: manifestMutations,
  challenge: fc.oneof(
    { weight: 12, arbitrary: fc.constant('valid' as const) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'missing' as const,
        'twice' as const,
        'notJson' as const,
        'shortNonce' as const,
        'empty' as const,
        'garbage' as const,
      ),
    },
  ),
  stream: streams,
  cut: fc.oneof(
    { weight: 4, arbitrary: fc.constant(1) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 999 }).map((n) => n / 1000) },
  ),
  reset: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});

/** True when nothing about the case is broken: the receive must then succeed. */
export function isPristine(c: SenderCase, changed: boolean): boolean {
  return !changed && c.challenge === 'valid' && c.cut === 1 && !c.reset;
}

export function challengeBytes(c: ChallengeMutation, nonce: Buffer): Buffer {
  const good = frame({
    type: FrameType.CHALLENGE,
    payload: Buffer.from(JSON.stringify({ nonce: nonce.toString('hex') })),
  });
  switch (c) {
    case 'valid':
      return good;
    case 'missing':
      return Buffer.alloc(0);
    case 'twice':
      return Buffer.concat([good, good]);
    case 'notJson':
      return frame({ type: FrameType.CHALLENGE, payload: Buffer.from('{nonce') });
    case 'shortNonce':
      return frame({ type: FrameType.CHALLENGE, payload: Buffer.from('{"nonce":"abcd"}') });
    case 'empty':
      return frame({ type: FrameType.CHALLENGE, payload: Buffer.alloc(0) });
    case 'garbage':
      // Bytes before the CHALLENGE that are no frame the protocol knows (0xff is no frame type).
      return Buffer.concat([Buffer.from([0xff, 0, 0, 0, 3, 1, 2, 3]), good]);
  }
}

function frame(f: Frame): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header[0] = f.type;
  header.writeUInt32BE(f.length ?? f.payload.length, 1);
  return Buffer.concat([header, f.payload]);
}

/**
 * The bytes a sender sends after the handshake, MACed with `key` as a sender holding the ticket
 * would (over the control frames as they leave, mutations included), and whether the stream
 * differs from the honest one.
 */
export function senderStream(c: SenderCase, key: Buffer): { bytes: Buffer; changed: boolean } {
  const { text, changed: manifestChanged } = manifestText(c.tree, c.manifest);
  const frames: Frame[] = [{ type: FrameType.MANIFEST, payload: Buffer.from(text) }];
  // DATA frames of varied sizes, as socket chunks would cut them.
  for (const f of c.tree.files) {
    const step = 1 + (dataOf(f).length % 9_000) + 4_096;
    for (let at = 0; at < dataOf(f).length; at += step)
      frames.push({ type: FrameType.DATA, payload: dataOf(f).subarray(at, at + step) });
    frames.push({ type: FrameType.FILE_DONE, payload: createHash('sha256').update(dataOf(f)).digest() });
  }
  const changed = mutate(frames, c.stream) || manifestChanged;
  const mac = new TranscriptMac(key);
  const out: Buffer[] = [];
  for (const f of frames) {
    const bytes = frame(f);
    if (f.type === FrameType.MANIFEST || f.type === FrameType.FILE_DONE) mac.add(bytes);
    out.push(bytes);
  }
  const end = mac.digest();
  if (c.stream.k === 'wrongMac') end[0] = (end[0] ?? 0) ^ 1;
  out.push(frame({ type: FrameType.END, payload: end }));
  const bytes = Buffer.concat(out);
  return { bytes: bytes.subarray(0, Math.floor(c.cut * bytes.length)), changed };
}

/** Applies `m` to `frames` in place; true when it changed anything. */
function mutate(frames: Frame[], m: StreamMutation): boolean {
  const at = (n: number): number => n % frames.length;
  const ofType = (type: number): number[] => frames.flatMap((f, i) => (f.type === type ? [i] : []));
  const pickOf = (type: number, n: number): Frame | undefined => {
    const list = ofType(type);
    return list.length === 0 ? undefined : frames[list[n % list.length] as number];
  };
  switch (m.k) {
    case 'none':
      return false;
    case 'wrongMac':
      return true;
    case 'flipData': {
      const f = pickOf(FrameType.DATA, m.at);
      if (!f) return false;
      f.payload = Buffer.from(f.payload);
      const i = m.at % f.payload.length;
      f.payload[i] = (f.payload[i] ?? 0) ^ (1 << m.bit);
      return true;
    }
    case 'wrongDigest': {
      const f = pickOf(FrameType.FILE_DONE, m.at);
      if (!f) return false;
      f.payload = Buffer.from(f.payload);
      f.payload[0] = (f.payload[0] ?? 0) ^ 0x80;
      return true;
    }
    case 'extraData': {
      const dones = ofType(FrameType.FILE_DONE);
      const i = dones.length === 0 ? frames.length : (dones[m.at % dones.length] as number);
      frames.splice(i, 0, { type: FrameType.DATA, payload: Buffer.alloc(m.bytes, 0x5a) });
      return true;
    }
    case 'drop':
      frames.splice(at(m.at), 1);
      return true;
    case 'duplicate': {
      const f = frames[at(m.at)] as Frame;
      frames.splice(at(m.at), 0, { ...f });
      return true;
    }
    case 'swap': {
      const [i, j] = [at(m.at), at(m.with)];
      const [a, b] = [frames[i] as Frame, frames[j] as Frame];
      if (i === j || (a.type === b.type && a.payload.equals(b.payload))) return false;
      [frames[i], frames[j]] = [b, a];
      return true;
    }
    case 'retype': {
      const f = frames[at(m.at)] as Frame;
      if (f.type === m.type) return false;
      f.type = m.type;
      return true;
    }
    case 'relength': {
      const f = frames[at(m.at)] as Frame;
      const n = f.payload.length;
      const lengths = {
        zero: 0,
        max: 0xffff_ffff,
        sign: 0x8000_0000,
        plus1: n + 1,
        minus1: Math.max(0, n - 1),
        huge: 65 * 1024 * 1024,
      };
      f.length = lengths[m.length];
      return f.length !== n;
    }
    case 'insert':
      frames.splice(at(m.at), 0, { type: m.type, payload: Buffer.from(m.payload) });
      return true;
    case 'senderError': {
      const body: Record<string, unknown> = {};
      if (m.reason !== undefined) body['reason'] = m.reason;
      if (m.message !== undefined) body['message'] = m.message;
      frames.splice(at(m.at), 0, { type: FrameType.ERROR, payload: Buffer.from(JSON.stringify(body)) });
      return true;
    }
  }
}
