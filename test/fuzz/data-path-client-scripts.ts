// What a receiver sends to an agent's data listener, generated: garbage before the handshake, a
// HELLO with mutated fields, a wrong frame type or length, a wrong or missing PROOF, a connection
// closed at any byte, a second connection with a used ticket, TLS or plaintext. The client holds
// what a real receiver holds: a ticket from OpenSend bound to its certificate's name.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { clientProof, sessionKey, ticketId } from '../../agent/src/transfer/session-keys.js';
import { FrameType, HEADER_BYTES } from '../../agent/src/transfer/wire.js';

export type HelloMutation =
  | { k: 'valid' }
  | { k: 'field'; field: 'version' | 'ticketId' | 'nonce' | 'digests' | 'extra'; value: unknown }
  | { k: 'payload'; text: string }
  | { k: 'type'; type: number }
  | { k: 'length'; length: number; longer: boolean };

export type ProofMutation = 'valid' | 'missing' | 'flipped' | 'short' | 'long' | 'asHello' | 'twice';

export interface ClientCase {
  /** The transport the client uses; a TLS-only agent must refuse plaintext. */
  transport: 'tls' | 'plain';
  /** Raw bytes on the TCP connection before anything else. */
  garbage: Buffer | undefined;
  hello: HelloMutation;
  proof: ProofMutation;
  /** Frames sent after the proof, while the agent sends. */
  trailing: 'none' | 'data' | 'error' | 'hello';
  /** Stop reading and close after this many received bytes (Infinity: read to the end). */
  readUpTo: number;
  /** Cut the script at this fraction (1: all of it). */
  cut: number;
}

const hellos: fc.Arbitrary<HelloMutation> = fc.oneof(
  { weight: 12, arbitrary: fc.constant({ k: 'valid' as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant('field' as const),
      field: fc.constantFrom(
        'version' as const,
        'ticketId' as const,
        'nonce' as const,
        'digests' as const,
        'extra' as const,
      ),
      value: fc.constantFrom<unknown>(
        0,
        2,
        '1',
        null,
        -1,
        2 ** 53,
        'ab',
        '0'.repeat(64),
        'F'.repeat(64),
        'zz'.repeat(16),
        '00'.repeat(16),
        [],
        {},
        'x\u0000',
        ['xxh3-64'],
        ['blake9', 'sha256', 'xxh3-64'],
        ['blake9'],
        ['x'.repeat(40)],
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('payload' as const),
      text: fc.oneof(
        fc.constantFrom('', '{', 'null', '[]', '"x"', '1', '{"__proto__":{"version":1}}'),
        fc.string({ maxLength: 40 }),
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant('type' as const), type: fc.integer({ min: 0, max: 255 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.constant({ k: 'length' as const, length: 0, longer: false }),
      fc.constant({ k: 'length' as const, length: 0xffff_ffff, longer: true }),
      fc.constant({ k: 'length' as const, length: 0x8000_0000, longer: true }),
      fc.constant({ k: 'length' as const, length: 64 * 1024 + 1, longer: true }),
      fc.constant({ k: 'length' as const, length: -1, longer: false }),
      fc.constant({ k: 'length' as const, length: 1, longer: true }),
    ),
  },
);

export const clientCases: fc.Arbitrary<ClientCase> = fc.record({
  transport: fc.constantFrom('tls' as const, 'plain' as const),
  garbage: fc.oneof(
    { weight: 10, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b)) },
    {
      weight: 1,
      arbitrary: fc.uint8Array({ maxLength: 32 }).map((b) => Buffer.concat([Buffer.from([0x16]), b])),
    },
  ),
  hello: hellos,
  proof: fc.oneof(
    { weight: 8, arbitrary: fc.constant('valid' as const) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        'missing' as const,
        'flipped' as const,
        'short' as const,
        'long' as const,
        'asHello' as const,
        'twice' as const,
      ),
    },
  ),
  trailing: fc.oneof(
    { weight: 6, arbitrary: fc.constant('none' as const) },
    { weight: 1, arbitrary: fc.constantFrom('data' as const, 'error' as const, 'hello' as const) },
  ),
  readUpTo: fc.oneof(
    { weight: 4, arbitrary: fc.constant(Infinity) },
    { weight: 1, arbitrary: fc.nat({ max: 300_000 }) },
  ),
  cut: fc.oneof(
    { weight: 6, arbitrary: fc.constant(1) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 999 }).map((n) => n / 1000) },
  ),
});

function frame(type: number, payload: Buffer, length = payload.length): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header[0] = type;
  header.writeUInt32BE(length >>> 0, 1);
  return Buffer.concat([header, payload]);
}

/** The HELLO the case sends, and whether it is the honest one. */
export function helloBytes(c: ClientCase, ticket: string, nonce: Buffer): { bytes: Buffer; honest: boolean } {
  const body: Record<string, unknown> = {
    version: 1,
    ticketId: ticketId(ticket),
    nonce: nonce.toString('hex'),
  };
  const h = c.hello;
  if (h.k === 'field') body[h.field] = h.value;
  const payload = Buffer.from(h.k === 'payload' ? h.text : JSON.stringify(body));
  const bytes =
    h.k === 'type'
      ? frame(h.type, payload)
      : h.k === 'length'
        ? frame(FrameType.HELLO, payload, h.length)
        : frame(FrameType.HELLO, payload);
  const honest =
    h.k === 'valid' ||
    (h.k === 'field' && h.field === 'extra') ||
    (h.k === 'field' && h.field === 'digests' && usableOffer(h.value, c.transport)) ||
    (h.k === 'type' && h.type === FrameType.HELLO);
  return { bytes, honest };
}

/**
 * A receiver's list of checksums the sender can serve: short names, at least one it knows and may
 * use on this transport (SHA-256 only without TLS).
 */
function usableOffer(value: unknown, transport: ClientCase['transport']): boolean {
  if (!Array.isArray(value) || value.length === 0) return false;
  if (!value.every((v) => typeof v === 'string' && v.length <= 32)) return false;
  return value.includes('sha256') || (transport === 'tls' && value.includes('xxh3-64'));
}

/** The PROOF for the server's CHALLENGE nonce, as the case spoils it. */
export function proofBytes(c: ClientCase, ticket: string, clientNonce: Buffer, serverNonce: Buffer): Buffer {
  const good = clientProof(sessionKey(ticket, clientNonce, serverNonce));
  switch (c.proof) {
    case 'valid':
      return frame(FrameType.PROOF, good);
    case 'missing':
      return Buffer.alloc(0);
    case 'flipped':
      return frame(FrameType.PROOF, Buffer.from(good.map((b, i) => (i === 0 ? b ^ 1 : b))));
    case 'short':
      return frame(FrameType.PROOF, good.subarray(0, 16));
    case 'long':
      return frame(FrameType.PROOF, Buffer.concat([good, Buffer.alloc(1)]));
    case 'asHello':
      return frame(FrameType.HELLO, good);
    case 'twice':
      return Buffer.concat([frame(FrameType.PROOF, good), frame(FrameType.PROOF, good)]);
  }
}

export function trailingBytes(c: ClientCase): Buffer {
  switch (c.trailing) {
    case 'none':
      return Buffer.alloc(0);
    case 'data':
      return frame(FrameType.DATA, randomBytes(100));
    case 'error':
      return frame(FrameType.ERROR, Buffer.from('{"reason":"NO_SPACE","message":"receiver\\nfull"}'));
    case 'hello':
      return frame(FrameType.HELLO, Buffer.from('{}'));
  }
}
