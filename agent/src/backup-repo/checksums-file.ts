/**
 * A backup directory's `SHA256SUMS` (docs/backups.md#repository): one line per other file of the
 * directory, `<64 lower-case hex><two spaces><name>\n`, as `sha256sum` writes it (and as
 * `sha256sum -c` reads it), sorted by name. Reading is strict: the file is written only by the
 * agent, so anything else in it (another spacing, upper-case hex, a path, a duplicate, a missing
 * final newline) means it was damaged or replaced, and is refused rather than half-understood.
 */
import { StorageError } from '../../../common/src/errors.js';

export const CHECKSUMS_FILE = 'SHA256SUMS';
/** A file a backup directory may list: a plain name, no dot-name (staging), no path. */
const NAME = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,254}$/;
const LINE = /^([0-9a-f]{64}) {2}(.+)$/;
/** Far more than any backup holds (disks x increments, vm.xml, vTPM). */
const MAX_ENTRIES = 10_000;

export interface Checksum {
  name: string;
  /** 64 lower-case hex digits. */
  sha256: string;
}

/** Whether `name` can be listed in SHA256SUMS (and so stored in a backup directory). */
export function isChecksumName(name: string): boolean {
  return NAME.test(name) && name !== CHECKSUMS_FILE;
}

/** The file's text for `entries` (sorted by name); a bad name or digest is INVALID_ARGUMENT. */
export function formatChecksums(entries: readonly Checksum[]): string {
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const [i, e] of sorted.entries()) {
    if (!isChecksumName(e.name))
      throw new StorageError('INVALID_ARGUMENT', `${CHECKSUMS_FILE}: cannot list ${JSON.stringify(e.name)}`);
    if (!/^[0-9a-f]{64}$/.test(e.sha256))
      throw new StorageError('INVALID_ARGUMENT', `${CHECKSUMS_FILE}: ${e.name}: not a SHA-256 in hex`);
    if (i > 0 && sorted[i - 1]?.name === e.name)
      throw new StorageError('INVALID_ARGUMENT', `${CHECKSUMS_FILE}: ${e.name} listed twice`);
  }
  return sorted.map((e) => `${e.sha256}  ${e.name}\n`).join('');
}

/**
 * The digests `text` lists, by file name. `what` names the file in errors (host and path);
 * any deviation from the format is CHECKSUM_MISMATCH naming the line.
 */
export function parseChecksums(text: string, what: string): Map<string, string> {
  const bad = (why: string): StorageError => new StorageError('CHECKSUM_MISMATCH', `${what}: ${why}`);
  if (text !== '' && !text.endsWith('\n')) throw bad('does not end with a newline');
  const lines = text === '' ? [] : text.slice(0, -1).split('\n');
  if (lines.length > MAX_ENTRIES) throw bad(`lists more than ${MAX_ENTRIES} files`);
  const out = new Map<string, string>();
  for (const [i, line] of lines.entries()) {
    const m = LINE.exec(line);
    const name = m?.[2];
    if (!m || name === undefined || !isChecksumName(name))
      throw bad(`line ${i + 1} is not "<sha256 in lower-case hex>  <file name>"`);
    if (out.has(name)) throw bad(`line ${i + 1} lists ${name} a second time`);
    out.set(name, m[1] as string);
  }
  return out;
}
