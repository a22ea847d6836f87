import { Reasons, type Reason } from '../../../common/src/errors.js';
import { MIB } from '../../../common/src/units.js';

/**
 * Framing of the agent-to-agent data path.
 *
 * Every frame is a 5-byte header (type, then payload length as an unsigned 32-bit big-endian
 * integer) and its payload. Control frames are small and buffered whole; DATA payloads are handed
 * on as slices of the socket's own chunks, so the receiver copies nothing it does not have to.
 *
 * Conversation (the receiving agent is the client, the sending agent the server):
 *   C→S HELLO      {"version":1,"ticketId":hex,"nonce":hex,"digests":[..]}  (names the ticket, never
 *                  sends it; digests: the per-file checks it accepts, preferred first: digest-algorithms.ts)
 *   S→C CHALLENGE  {"nonce":hex}
 *   C→S PROOF      32 bytes: proves the client holds the ticket
 *   S→C MANIFEST   JSON manifest (see manifest.ts), with "digest": the check the sender chose
 *   S→C DATA*      the data extents of every file, in manifest order, back to back
 *   S→C FILE_DONE  that digest of one file's data stream (one per file, in order): 8 bytes of XXH3
 *                  under TLS, 32 of SHA-256 in the plaintext mode or for a peer that offers nothing
 *   S→C END        32 bytes: HMAC over every control frame the server sent (see session-keys.ts)
 *   either way ERROR {"reason":..,"message":..} then close.
 */
export const FrameType = {
  HELLO: 0x48, // 'H'
  CHALLENGE: 0x43, // 'C'
  PROOF: 0x50, // 'P'
  MANIFEST: 0x4d, // 'M'
  DATA: 0x44, // 'D'
  FILE_DONE: 0x46, // 'F'
  END: 0x45, // 'E'
  ERROR: 0x58, // 'X'
} as const;

export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

export const PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 5;
/** A manifest of a VM directory is kilobytes; this only stops a hostile peer from exhausting memory. */
export const MAX_CONTROL_BYTES = 64 * MIB;
/** The first byte of a TLS handshake record: how the listener tells TLS from the plaintext mode. */
export const TLS_HANDSHAKE_BYTE = 0x16;

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

export function frameHeader(
  type: FrameTypeValue,
  length: number,
  into: Buffer = Buffer.allocUnsafe(HEADER_BYTES),
): Buffer {
  into[0] = type;
  into.writeUInt32BE(length, 1);
  return into;
}

/** A whole control frame (header and payload) in one buffer. */
export function controlFrame(type: FrameTypeValue, payload: Buffer | string | object): Buffer {
  const body = Buffer.isBuffer(payload)
    ? payload
    : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload), 'utf8');
  if (body.length > MAX_CONTROL_BYTES) throw new Error(`control frame of ${body.length} bytes is too large`);
  return Buffer.concat([frameHeader(type, body.length), body]);
}

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

export interface FrameHandlers {
  /** A complete control frame: `frame` is header and payload, as the peer sent it (for MACs). */
  control(type: FrameTypeValue, payload: Buffer, frame: Buffer): void;
  /** Part of a DATA frame's payload, in order; a slice of the socket's chunk (kept, not copied). */
  data(bytes: Buffer): void;
}

/**
 * Incremental frame parser: feed it socket chunks with push(); it calls the handlers and throws a
 * ProtocolError on anything malformed. Handlers may throw to stop the conversation.
 */
export class FrameReader {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  private type: FrameTypeValue | undefined;
  private remaining = 0;
  private parts: Buffer[] = [];

  constructor(
    private readonly handlers: FrameHandlers,
    private readonly maxControlBytes = MAX_CONTROL_BYTES,
  ) {}

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.type === undefined) {
        const take = Math.min(HEADER_BYTES - this.headerFill, chunk.length - pos);
        chunk.copy(this.header, this.headerFill, pos, pos + take);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < HEADER_BYTES) return;
        this.startFrame();
        if (this.remaining === 0) this.endFrame();
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - pos);
      const slice = chunk.subarray(pos, pos + take);
      pos += take;
      this.remaining -= take;
      if (this.type === FrameType.DATA) this.handlers.data(slice);
      else this.parts.push(slice);
      if (this.remaining === 0) this.endFrame();
    }
  }

  /** True between frames: a clean place for the peer to have closed the connection. */
  get idle(): boolean {
    return this.type === undefined && this.headerFill === 0;
  }

  private startFrame(): void {
    const type = this.header[0] ?? 0;
    if (!KNOWN_TYPES.has(type)) throw new ProtocolError(`unknown frame type 0x${type.toString(16)}`);
    const length = this.header.readUInt32BE(1);
    if (type !== FrameType.DATA && length > this.maxControlBytes) {
      throw new ProtocolError(`control frame of ${length} bytes exceeds ${this.maxControlBytes}`);
    }
    this.type = type as FrameTypeValue;
    this.remaining = length;
    this.parts = [];
  }

  private endFrame(): void {
    const type = this.type as FrameTypeValue;
    const header = Buffer.from(this.header);
    const parts = this.parts;
    this.type = undefined;
    this.headerFill = 0;
    this.parts = [];
    if (type === FrameType.DATA) return;
    const payload = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    this.handlers.control(type, payload, Buffer.concat([header, payload]));
  }
}

/** A reason name received from a peer's ERROR frame, if it is one of ours. */
export function knownReason(value: unknown): Reason | undefined {
  return typeof value === 'string' && Object.hasOwn(Reasons, value) ? (value as Reason) : undefined;
}
