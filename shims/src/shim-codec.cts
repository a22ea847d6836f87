// A hand-written protobuf codec for the two messages a shim handles: it encodes ShimRequest and
// decodes ShimEvent. Why not the generated code: it imports `@bufbuild/protobuf/wire`, whose index
// loads 19 modules (text format, reflection), and that adds about half the start-up time of
// `node -e 0` to every driver call oned makes. The types still come from the generated file (a
// type-only import, erased at compile time), and shim-codec.test.ts checks both directions against
// the generated encoder and decoder, so the contract stays the .proto.
import type { ShimEvent, ShimReply, ShimRequest } from '../../proto/gen/onestorage/shim/v1/shim.js';

/** Protobuf wire types (encoding spec, "Message Structure"). */
const enum WireType {
  Varint = 0,
  Fixed64 = 1,
  LengthDelimited = 2,
  Fixed32 = 5,
}

/** Field numbers from shim.proto. */
const enum RequestField {
  Kind = 1,
  Driver = 2,
  Action = 3,
  Args = 4,
  Stdin = 5,
  RequestId = 6,
  Pid = 7,
}
const enum EventField {
  Log = 1,
  Reply = 2,
}
const enum LogField {
  Line = 1,
}
const enum ReplyField {
  Stdout = 1,
  Stderr = 2,
  ExitCode = 3,
}

const TAG_TYPE_BITS = 3;
const TAG_TYPE_MASK = 0b111;
const VARINT_PAYLOAD_MASK = 0x7f;
const VARINT_CONTINUE = 0x80;
const VARINT_PAYLOAD_BITS = 7;
/** A 64-bit varint takes at most 10 bytes; a negative int32 is sign-extended to 64 bits. */
const VARINT_MAX_BYTES = 10;
const INT32_BITS = 32;
const FIXED64_BYTES = 8;
const FIXED32_BYTES = 4;

/** The message is not valid protobuf for the shim contract. */
export class ShimDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShimDecodeError';
  }
}

/** Encode a ShimRequest byte for byte as the generated `ShimRequest.encode` does. */
export function encodeShimRequest(request: ShimRequest): Buffer {
  const out = new Writer();
  out.string(RequestField.Kind, request.kind);
  out.string(RequestField.Driver, request.driver);
  out.string(RequestField.Action, request.action);
  // Repeated fields are written even when an element is empty: an empty argv[i] is still an argument.
  for (const arg of request.args) out.bytes(RequestField.Args, Buffer.from(arg, 'utf8'), true);
  out.bytes(RequestField.Stdin, request.stdin);
  out.string(RequestField.RequestId, request.requestId);
  out.int32(RequestField.Pid, request.pid);
  return out.finish();
}

/** Decode a ShimEvent as the generated `ShimEvent.decode` does (unknown fields are skipped). */
export function decodeShimEvent(bytes: Uint8Array): ShimEvent {
  const reader = new Reader(bytes, 0, bytes.length);
  const event: ShimEvent = {};
  while (reader.more()) {
    const [field, type] = reader.tag();
    if (field === EventField.Log && type === WireType.LengthDelimited) {
      event.log = { line: decodeLog(reader.sub()) };
    } else if (field === EventField.Reply && type === WireType.LengthDelimited) {
      event.reply = decodeReply(reader.sub());
    } else {
      reader.skip(type);
    }
  }
  return event;
}

function decodeLog(reader: Reader): string {
  let line = '';
  while (reader.more()) {
    const [field, type] = reader.tag();
    if (field === LogField.Line && type === WireType.LengthDelimited) line = reader.string();
    else reader.skip(type);
  }
  return line;
}

function decodeReply(reader: Reader): ShimReply {
  const reply: ShimReply = { stdout: '', stderr: [], exitCode: 0 };
  while (reader.more()) {
    const [field, type] = reader.tag();
    if (field === ReplyField.Stdout && type === WireType.LengthDelimited) reply.stdout = reader.string();
    else if (field === ReplyField.Stderr && type === WireType.LengthDelimited)
      reply.stderr.push(reader.string());
    else if (field === ReplyField.ExitCode && type === WireType.Varint) reply.exitCode = reader.int32();
    else reader.skip(type);
  }
  return reply;
}

/** Collects encoded fields; proto3 defaults (empty, zero) are left out, as the generated code does. */
class Writer {
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  string(field: number, value: string): void {
    if (value !== '') this.bytes(field, Buffer.from(value, 'utf8'));
  }

  bytes(field: number, value: Uint8Array, evenIfEmpty = false): void {
    if (value.length === 0 && !evenIfEmpty) return;
    this.push(varint(tag(field, WireType.LengthDelimited), 0));
    this.push(varint(value.length, 0));
    this.push(value);
  }

  int32(field: number, value: number): void {
    if (value === 0) return;
    this.push(varint(tag(field, WireType.Varint), 0));
    // int32 is encoded as a 64-bit varint: a negative value is sign-extended into the high word.
    this.push(varint(value >>> 0, value < 0 ? 0xffffffff : 0));
  }

  finish(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }

  private push(part: Uint8Array): void {
    this.parts.push(part);
    this.length += part.length;
  }
}

function tag(field: number, type: WireType): number {
  return ((field << TAG_TYPE_BITS) | type) >>> 0;
}

/** A 64-bit unsigned varint given as its low and high 32-bit words. */
function varint(low: number, high: number): Uint8Array {
  const out: number[] = [];
  let lo = low >>> 0;
  let hi = high >>> 0;
  while (hi !== 0 || lo > VARINT_PAYLOAD_MASK) {
    out.push((lo & VARINT_PAYLOAD_MASK) | VARINT_CONTINUE);
    lo = ((lo >>> VARINT_PAYLOAD_BITS) | (hi << (INT32_BITS - VARINT_PAYLOAD_BITS))) >>> 0;
    hi = hi >>> VARINT_PAYLOAD_BITS;
  }
  out.push(lo);
  return Uint8Array.from(out);
}

/** Reads fields from bytes[pos, end). */
class Reader {
  constructor(
    private readonly bytes: Uint8Array,
    private pos: number,
    private readonly end: number,
  ) {}

  more(): boolean {
    return this.pos < this.end;
  }

  tag(): [field: number, type: number] {
    const value = this.varint() >>> 0;
    const field = value >>> TAG_TYPE_BITS;
    if (field === 0) throw new ShimDecodeError('invalid protobuf field number 0');
    return [field, value & TAG_TYPE_MASK];
  }

  /** The low 32 bits of a varint, as a signed int32 (higher bits are dropped, as for int32 fields). */
  varint(): number {
    let value = 0;
    for (let i = 0; i < VARINT_MAX_BYTES; i++) {
      const byte = this.byte();
      const shift = i * VARINT_PAYLOAD_BITS;
      if (shift < INT32_BITS) value |= (byte & VARINT_PAYLOAD_MASK) << shift;
      if ((byte & VARINT_CONTINUE) === 0) return value;
    }
    throw new ShimDecodeError('invalid protobuf varint (more than 10 bytes)');
  }

  int32(): number {
    return this.varint() | 0;
  }

  string(): string {
    const [start, end] = this.span();
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + start, end - start).toString('utf8');
  }

  /** A reader over the next length-delimited field (an embedded message). */
  sub(): Reader {
    const [start, end] = this.span();
    return new Reader(this.bytes, start, end);
  }

  skip(type: number): void {
    switch (type) {
      case WireType.Varint:
        this.varint();
        return;
      case WireType.Fixed64:
        this.advance(FIXED64_BYTES);
        return;
      case WireType.LengthDelimited:
        this.span();
        return;
      case WireType.Fixed32:
        this.advance(FIXED32_BYTES);
        return;
      default:
        throw new ShimDecodeError(`unsupported protobuf wire type ${type}`);
    }
  }

  private span(): [start: number, end: number] {
    const length = this.varint() >>> 0;
    const start = this.pos;
    this.advance(length);
    return [start, this.pos];
  }

  private advance(bytes: number): void {
    if (this.end - this.pos < bytes) throw new ShimDecodeError('truncated protobuf message');
    this.pos += bytes;
  }

  private byte(): number {
    const byte = this.bytes[this.pos];
    if (this.pos >= this.end || byte === undefined) throw new ShimDecodeError('truncated protobuf message');
    this.pos++;
    return byte;
  }
}
