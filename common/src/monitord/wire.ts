import { constants, publicEncrypt, type KeyObject } from 'node:crypto';
import { deflateSync } from 'node:zlib';

/**
 * monitord's message format (docs/opennebula/monitoring.md#wire-format): one ASCII line `TYPE STATUS HOST_ID TIMESTAMP PAYLOAD`,
 * PAYLOAD = base64(zlib_deflate([RSA-encrypted] data)), zlib with its header. The receiver inflates
 * first and decrypts after, so the sender encrypts first and compresses the ciphertext.
 */
export const MonitorMessageType = {
  MonitorVm: 'MONITOR_VM',
  SystemHost: 'SYSTEM_HOST',
} as const;
export type MonitorMessageType = (typeof MonitorMessageType)[keyof typeof MonitorMessageType];

export type MonitorStatus = 'SUCCESS' | 'FAILURE';

/** The host id of messages that belong to no host (shared datastore monitoring); their timestamp is 0. */
export const NO_HOST_ID = -1;
/**
 * monitord drops UDP datagrams of 65536 bytes or more, and an IPv4 datagram carries at most 65,507
 * bytes of payload: a whole message line must stay at or below this.
 */
export const MAX_MESSAGE_BYTES = 65_507;
/** PKCS#1 v1.5 padding takes 11 bytes of every block (monitord's client splits the plaintext so). */
const PKCS1_OVERHEAD_BYTES = 11;

export interface MonitorMessage {
  type: MonitorMessageType;
  status: MonitorStatus;
  hostId: number;
  /** Unix seconds; 0 switches monitord's out-of-order check off. */
  timestamp: number;
  /** The template text (e.g. `VM = [ ID=3, MONITOR="..." ]` lines). */
  data: string;
}

/** Encrypts `plain` as monitord's client does: PKCS#1 v1.5 per (modulus - 11)-byte chunk, blocks back to back. */
export function rsaEncryptChunks(plain: Buffer, publicKey: KeyObject): Buffer {
  const modulusBits = publicKey.asymmetricKeyDetails?.modulusLength;
  if (!modulusBits) throw new Error('monitord public key: not an RSA key');
  const chunk = modulusBits / 8 - PKCS1_OVERHEAD_BYTES;
  const blocks: Buffer[] = [];
  for (let at = 0; at < plain.length; at += chunk) {
    blocks.push(
      publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, plain.subarray(at, at + chunk)),
    );
  }
  return Buffer.concat(blocks);
}

/** The PAYLOAD field for `data`: base64(zlib([rsa](data))). */
export function encodePayload(data: string | Buffer, publicKey?: KeyObject): string {
  let bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  if (publicKey) bytes = rsaEncryptChunks(bytes, publicKey);
  return deflateSync(bytes).toString('base64');
}

/** One message line, newline-terminated as monitord's Ruby client sends it. */
export function encodeMessage(msg: MonitorMessage, publicKey?: KeyObject): string {
  return `${msg.type} ${msg.status} ${msg.hostId} ${msg.timestamp} ${encodePayload(msg.data, publicKey)}\n`;
}

export interface EncodeOptions {
  publicKey?: KeyObject;
  maxBytes?: number;
}

/**
 * Encodes `lines` (independent template lines, e.g. one `VM = [...]` per VM) into as few messages as
 * fit under `maxBytes` each, splitting only between lines. A single line that cannot fit alone is
 * returned in `tooLarge` (the caller logs it) rather than sent to be dropped silently by monitord.
 */
export function encodeMessages(
  header: Omit<MonitorMessage, 'data'>,
  lines: readonly string[],
  opts: EncodeOptions = {},
): { messages: string[]; tooLarge: string[] } {
  return new MessageEncoder().encode(header, lines, opts);
}

/** A part's payload from the last call; only its size when it did not fit. */
interface Part {
  payload: string | undefined;
  bytes: number;
  /** Calls since `bytes` was measured (0: measured over the part's current lines). */
  age: number;
}

/**
 * encodeMessages for a sender that sends much the same lines every cycle (MONITOR_VM). A part (a
 * range of lines) whose lines are those of the last call is not compressed again, and one that was
 * more than FAR_OVER times too large is split without being compressed (for up to REMEASURE_AFTER calls); the lines are written into
 * one buffer kept between calls rather than joined into a new string. The messages are those
 * encodeMessages makes, unless the same number of lines compressed to less than half within one
 * cycle: then some parts are split that would now fit whole (more messages, each still fits). Without a public key only: encryption pads at random, and
 * a ciphertext sent twice would tell a listener that the figures did not change.
 */
export class MessageEncoder {
  /** The lines of the last call and its parts by `first:end` line index. */
  private last: readonly string[] = [];
  private parts = new Map<string, Part>();
  /** The lines, each followed by a newline; a part is a slice of it. */
  private buf = Buffer.alloc(0);

  encode(
    header: Omit<MonitorMessage, 'data'>,
    lines: readonly string[],
    opts: EncodeOptions = {},
  ): { messages: string[]; tooLarge: string[] } {
    const maxBytes = opts.maxBytes ?? MAX_MESSAGE_BYTES;
    const key = opts.publicKey;
    const offsets = this.write(lines);
    const changed = key === undefined ? this.changedBefore(lines) : undefined;
    const prefix = `${header.type} ${header.status} ${header.hostId} ${header.timestamp} `;
    // The prefix, the base64 payload (ASCII) and the newline.
    const fixedBytes = Buffer.byteLength(prefix) + 1;
    const messages: string[] = [];
    const tooLarge: string[] = [];
    const next = new Map<string, Part>();
    // Halve until each part fits: compression makes sizes non-additive, so measure, do not predict.
    const pending: Array<[number, number]> = [[0, lines.length]];
    while (pending.length > 0) {
      const [first, end] = pending.shift() as [number, number];
      if (first === end) continue;
      const id = `${first}:${end}`;
      const same = changed !== undefined && changed[end] === changed[first];
      const was = changed !== undefined ? this.parts.get(id) : undefined;
      let part = same && was?.age === 0 ? was : undefined;
      // Lines changed in a part far too large when last measured, not long ago: split again without
      // compressing (a few changed lines cannot halve it). A single line is always measured.
      if (
        !same &&
        was?.payload === undefined &&
        end - first > 1 &&
        fixedBytes + (was?.bytes ?? 0) > FAR_OVER * maxBytes &&
        (was?.age ?? REMEASURE_AFTER) < REMEASURE_AFTER
      )
        part = { payload: undefined, bytes: was?.bytes ?? 0, age: (was?.age ?? 0) + 1 };
      if (part === undefined || (part.payload === undefined && fixedBytes + part.bytes <= maxBytes)) {
        const payload = encodePayload(this.buf.subarray(offsets[first], offsets[end]), key);
        part = { payload, bytes: payload.length, age: 0 };
      }
      if (fixedBytes + part.bytes <= maxBytes) {
        messages.push(`${prefix}${part.payload}\n`);
        next.set(id, part);
        continue;
      }
      next.set(id, { payload: undefined, bytes: part.bytes, age: part.age });
      if (end - first === 1) tooLarge.push(lines[first] as string);
      else {
        const half = first + Math.ceil((end - first) / 2);
        pending.unshift([first, half], [half, end]);
      }
    }
    this.parts = key === undefined ? next : new Map();
    this.last = key === undefined ? [...lines] : [];
    return { messages, tooLarge };
  }

  /** Writes the lines into `buf`, each followed by a newline; returns where each starts, and the end. */
  private write(lines: readonly string[]): Uint32Array {
    const offsets = new Uint32Array(lines.length + 1);
    let at = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string;
      offsets[i] = at;
      // A UTF-16 unit takes at most 3 bytes of UTF-8.
      const need = at + 3 * line.length + 1;
      if (need > this.buf.length) {
        const grown = Buffer.allocUnsafe(Math.max(need, Math.ceil(this.buf.length * 1.5)));
        this.buf.copy(grown, 0, 0, at);
        this.buf = grown;
      }
      at += this.buf.write(line, at, 'utf8');
      this.buf[at++] = NEWLINE;
    }
    offsets[lines.length] = at;
    return offsets;
  }

  /**
   * How many lines differ from the last call's before each index (a part [first, end) is unchanged
   * when the counts at both ends are equal); undefined when the number of lines changed.
   */
  private changedBefore(lines: readonly string[]): Uint32Array | undefined {
    if (lines.length !== this.last.length) return undefined;
    const counts = new Uint32Array(lines.length + 1);
    let n = 0;
    for (let i = 0; i < lines.length; i++) {
      counts[i] = n;
      if (lines[i] !== this.last[i]) n++;
    }
    counts[lines.length] = n;
    return counts;
  }
}

const NEWLINE = 0x0a;
/** A part over this many times the limit when last measured is not compressed again to be split... */
const FAR_OVER = 2;
/** ...unless it was measured this many calls ago: a slow drift is caught. */
const REMEASURE_AFTER = 10;
