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
export function encodePayload(data: string, publicKey?: KeyObject): string {
  let bytes: Buffer = Buffer.from(data, 'utf8');
  if (publicKey) bytes = rsaEncryptChunks(bytes, publicKey);
  return deflateSync(bytes).toString('base64');
}

/** One message line, newline-terminated as monitord's Ruby client sends it. */
export function encodeMessage(msg: MonitorMessage, publicKey?: KeyObject): string {
  return `${msg.type} ${msg.status} ${msg.hostId} ${msg.timestamp} ${encodePayload(msg.data, publicKey)}\n`;
}

/**
 * Encodes `lines` (independent template lines, e.g. one `VM = [...]` per VM) into as few messages as
 * fit under `maxBytes` each, splitting only between lines. A single line that cannot fit alone is
 * returned in `tooLarge` (the caller logs it) rather than sent to be dropped silently by monitord.
 */
export function encodeMessages(
  header: Omit<MonitorMessage, 'data'>,
  lines: readonly string[],
  opts: { publicKey?: KeyObject; maxBytes?: number } = {},
): { messages: string[]; tooLarge: string[] } {
  const maxBytes = opts.maxBytes ?? MAX_MESSAGE_BYTES;
  const messages: string[] = [];
  const tooLarge: string[] = [];
  const encode = (part: readonly string[]): string =>
    encodeMessage({ ...header, data: part.map((l) => `${l}\n`).join('') }, opts.publicKey);
  // Halve until each part fits: compression makes sizes non-additive, so measure, do not predict.
  const pending: Array<readonly string[]> = [lines];
  while (pending.length > 0) {
    const part = pending.shift() as readonly string[];
    if (part.length === 0) continue;
    const message = encode(part);
    if (Buffer.byteLength(message) <= maxBytes) messages.push(message);
    else if (part.length === 1) tooLarge.push(part[0] as string);
    else {
      const half = Math.ceil(part.length / 2);
      pending.unshift(part.slice(0, half), part.slice(half));
    }
  }
  return { messages, tooLarge };
}
