import { StorageError } from '../../../common/src/errors.js';
import { COMPRESSION_MAGIC_BYTES, sniffCompression } from './compression.js';
import { decompress } from './decompress.js';
import { FORMAT_HEAD_BYTES, sniffFormat } from './format-sniff.js';
import type { ImportSource } from './import-pipeline.js';
import { type Peeked, peek } from './peek.js';

export interface ProbeOptions {
  /** A file of this host (a compressed raw file is then measured by decompressing it whole). */
  local: boolean;
  noDecompress: boolean;
  what: string;
  signal: AbortSignal;
}

export interface Probed {
  sizeBytes: number;
  /** "raw", "qcow2", or the foreign format found ("vmdk", ...). */
  format: string;
  /** "", "gzip", "bzip2" or "xz". */
  compression: string;
}

/**
 * What ImportImage would register from `source`, measured from its first bytes
 * (docs/image-datastore.md#registering-an-image-cp-on-the-agent): a qcow2's virtual size from its
 * header (decompressing only the head of a compressed one), a foreign format's from its header, a
 * raw file's byte size (the file's size; an http(s) one's Content-Length). A compressed raw file is
 * measured by decompressing it whole when it is local, refused (BAD_IMAGE) behind a URL. An empty
 * image is BAD_IMAGE. Nothing is written; the download stops once the head has been read.
 */
export async function probeSource(source: ImportSource, o: ProbeOptions): Promise<Probed> {
  const controller = new AbortController();
  const stop = (): void => controller.abort(o.signal.reason);
  if (o.signal.aborted) stop();
  o.signal.addEventListener('abort', stop, { once: true });
  let announced: number | undefined;
  const opened: Peeked[] = [];
  try {
    const stream = source.open(controller.signal, {
      expect: (total) => (announced = total),
      retrying: () => undefined,
    });
    const raw = await peek(stream, COMPRESSION_MAGIC_BYTES);
    opened.push(raw);
    const kind = o.noDecompress ? undefined : sniffCompression(raw.head);
    const data = kind
      ? decompress(kind, raw.stream, { signal: controller.signal, what: o.what })
      : raw.stream;
    const head = await peek(data, FORMAT_HEAD_BYTES);
    opened.push(head);
    const sniffed = sniffFormat(head.head);
    const compression = kind ?? '';
    if (sniffed.kind === 'refused' && head.head.length === 0)
      throw new StorageError('BAD_IMAGE', `${o.what}: it is empty`);
    let size: number;
    let format: string = sniffed.kind;
    if (sniffed.kind === 'qcow2') size = Number(sniffed.header.virtualSize);
    else if (sniffed.kind !== 'raw' && sniffed.kind !== 'refused') {
      if (sniffed.virtualSize === undefined)
        throw new StorageError(
          'BAD_IMAGE',
          `${o.what}: the size of a ${sniffed.kind} image cannot be read from its first bytes`,
        );
      size = Number(sniffed.virtualSize);
    } else {
      // Raw, or bytes cp would refuse (an archive...): measured as they would be stored.
      format = 'raw';
      size = await rawSize(head, kind !== undefined, announced, o);
    }
    if (size <= 0) throw new StorageError('BAD_IMAGE', `${o.what}: its size is 0`);
    return { sizeBytes: size, format, compression };
  } finally {
    o.signal.removeEventListener('abort', stop);
    controller.abort();
    for (const p of opened.reverse()) await p.close().catch(() => undefined);
  }
}

async function rawSize(
  head: Peeked,
  compressed: boolean,
  announced: number | undefined,
  o: ProbeOptions,
): Promise<number> {
  if (!compressed) {
    if (announced === undefined)
      throw new StorageError(
        'BAD_IMAGE',
        `${o.what}: the server gives no size (no Content-Length) for a raw image`,
      );
    return announced;
  }
  if (!o.local)
    throw new StorageError(
      'BAD_IMAGE',
      `${o.what}: a compressed raw image behind a URL cannot be measured without downloading it whole; give SIZE or upload it uncompressed`,
    );
  let bytes = 0;
  for await (const chunk of head.stream) bytes += chunk.length;
  return bytes;
}
