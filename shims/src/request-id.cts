// Request ids for the journal and the logs: a random UUID (version 4). Not from node:crypto: loading
// it costs a shim about 8 ms of CPU, as much as connecting, sending and printing the reply together,
// and an id only needs to be unique, which 16 bytes of /dev/urandom give just as well.
import { closeSync, openSync, readSync } from 'node:fs';

const RANDOM_SOURCE = '/dev/urandom';
const UUID_BYTES = 16;
const BYTE_VALUES = 256;
/** RFC 9562 §5.4: byte 6 carries the version (4), byte 8 the variant (0b10). */
const VERSION_BYTE = 6;
const VERSION_4 = 0x40;
const VERSION_KEEP_MASK = 0x0f;
const VARIANT_BYTE = 8;
const VARIANT_RFC = 0x80;
const VARIANT_KEEP_MASK = 0x3f;
/** Where the dashes go in the 32 hex digits: 8-4-4-4-12. */
const GROUP_ENDS = [8, 12, 16, 20, 32];

/** A new random UUID, e.g. `0f8fad5b-d9cb-469f-a165-70867728950e`. */
export function newRequestId(): string {
  const bytes = randomBytes();
  bytes[VERSION_BYTE] = ((bytes[VERSION_BYTE] ?? 0) & VERSION_KEEP_MASK) | VERSION_4;
  bytes[VARIANT_BYTE] = ((bytes[VARIANT_BYTE] ?? 0) & VARIANT_KEEP_MASK) | VARIANT_RFC;
  const hex = bytes.toString('hex');
  const groups: string[] = [];
  let start = 0;
  for (const end of GROUP_ENDS) {
    groups.push(hex.slice(start, end));
    start = end;
  }
  return groups.join('-');
}

function randomBytes(): Buffer {
  const bytes = Buffer.alloc(UUID_BYTES);
  try {
    const fd = openSync(RANDOM_SOURCE, 'r');
    try {
      if (readSync(fd, bytes, 0, UUID_BYTES, null) === UUID_BYTES) return bytes;
    } finally {
      closeSync(fd);
    }
  } catch {
    // No /dev/urandom (a minimal chroot): fall through to Math.random, still unique enough for an id.
  }
  for (let i = 0; i < UUID_BYTES; i++) bytes[i] = Math.floor(Math.random() * BYTE_VALUES);
  return bytes;
}
