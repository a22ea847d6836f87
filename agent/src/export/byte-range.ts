/** What a request's Range header asks of a representation of `size` bytes (RFC 9110, section 14). */
export type ByteRange =
  /** No usable Range: the whole file, 200. */
  | { readonly kind: 'whole' }
  /** One satisfiable range, both ends inclusive: 206 with Content-Range. */
  | { readonly kind: 'part'; readonly start: number; readonly end: number }
  /** A well-formed range that starts past the end: 416 with `Content-Range: bytes *\/size`. */
  | { readonly kind: 'unsatisfiable' };

const WHOLE: ByteRange = { kind: 'whole' };
/** `bytes=first-[last]` or `bytes=-suffix`, one range only. */
const SINGLE_RANGE = /^bytes=(?:(\d{1,16})-(\d{0,16})|-(\d{1,16}))$/;

/**
 * The one byte range `header` asks for. The export server answers a single range; anything else a
 * server may ignore (several ranges, another unit, a malformed value, last before first) gets the
 * whole file, as RFC 9110 allows, which every client, curl and downloader.sh included, accepts.
 */
export function byteRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return WHOLE;
  const m = SINGLE_RANGE.exec(header.replace(/\s+/g, ''));
  if (!m) return WHOLE;
  const [, first, last, suffix] = m;
  if (suffix !== undefined) {
    const length = Number(suffix);
    if (length === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'part', start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(first);
  const open = last === undefined || last === '';
  if (!open && Number(last) < start) return WHOLE;
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'part', start, end: open ? size - 1 : Math.min(Number(last), size - 1) };
}
