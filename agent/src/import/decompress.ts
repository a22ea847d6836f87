import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { StorageError, oneLine } from '../../../common/src/errors.js';
import type { Compression } from './compression.js';

/** bzip2 and xz are undone by the tools themselves (argv arrays, never a shell). */
const TOOLS: Record<Exclude<Compression, 'gzip'>, { file: string; args: string[] }> = {
  bzip2: { file: 'bzip2', args: ['-dc'] },
  xz: { file: 'xz', args: ['-dc'] },
};
/** zlib's output chunk size for gzip. */
const GUNZIP_CHUNK_BYTES = 1024 * 1024;
/** A tool's complaint is quoted in the error; this bounds what is kept of it. */
const MAX_STDERR_CHARS = 4096;

export interface DecompressOptions {
  signal: AbortSignal;
  /** For messages: "cp image 7 from http://...". */
  what: string;
}

/**
 * The decompressed bytes of `input` (compressed with `kind`), as they come. gzip runs in zlib;
 * bzip2 and xz in `bzip2 -dc` / `xz -dc`, fed through their stdin. A corrupt stream is BAD_IMAGE
 * naming the compression; an error of `input` itself (the download) wins over the decompressor's
 * reaction to its input ending early. Stopping early (the consumer returns, the signal aborts)
 * kills the tool. Nothing here waits on `input` while cleaning up: the caller's signal ends it.
 */
export async function* decompress(
  kind: Compression,
  input: AsyncIterable<Buffer>,
  opts: DecompressOptions,
): AsyncGenerator<Buffer> {
  const watched = new WatchedInput(input);
  if (kind === 'gzip') yield* gunzip(watched, opts);
  else yield* viaTool(kind, watched, opts);
}

/**
 * Remembers the error `input` failed with, the moment it passes (before any stream reacts to it).
 * Only errors of `input` itself count: one thrown in by the stream it feeds (EPIPE from a tool
 * that stopped reading) is not the download's.
 */
class WatchedInput {
  error: unknown;
  constructor(private readonly input: AsyncIterable<Buffer>) {}
  async *chunks(): AsyncGenerator<Buffer> {
    const it = this.input[Symbol.asyncIterator]();
    try {
      for (;;) {
        let r: IteratorResult<Buffer>;
        try {
          r = await it.next();
        } catch (err) {
          this.error ??= err;
          throw err;
        }
        if (r.done) return;
        yield r.value;
      }
    } finally {
      // Stopped early (the decompressor failed or the consumer left): let go of the download.
      if (this.error === undefined) void Promise.resolve(it.return?.()).catch(() => undefined);
    }
  }
}

async function* gunzip(input: WatchedInput, opts: DecompressOptions): AsyncGenerator<Buffer> {
  // Multi-member gzip files (concatenated) are read whole, as gunzip does. zlib inflates on libuv's
  // thread pool; 1 MiB output chunks (not the default 16 KiB) mean 64 times fewer hand-offs and
  // run about 1.4x faster (docs/benchmarks.md#node-dist-benchbenchimage-cprunjs-registering-an-image-datastore-cp).
  const z = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
  void pipeline(Readable.from(input.chunks(), { objectMode: false }), z, { signal: opts.signal }).catch(
    () => undefined,
  );
  try {
    for await (const chunk of z as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    throw input.error ?? (isZlibError(err) ? corrupt('gzip', err, opts.what) : err);
  } finally {
    z.destroy();
  }
  if (input.error !== undefined) throw input.error;
}

async function* viaTool(
  kind: Exclude<Compression, 'gzip'>,
  input: WatchedInput,
  opts: DecompressOptions,
): AsyncGenerator<Buffer> {
  const { file, args } = TOOLS[kind];
  const child = spawn(file, args, {
    env: { ...process.env, LANG: 'C', LC_ALL: 'C' },
    stdio: ['pipe', 'pipe', 'pipe'],
    signal: opts.signal,
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    if (stderr.length < MAX_STDERR_CHARS) stderr += b.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; error?: NodeJS.ErrnoException }>((resolve) => {
    child.on('error', (error: NodeJS.ErrnoException) => resolve({ code: null, error }));
    child.on('close', (code) => resolve({ code }));
  });
  // The tool may stop reading (it failed): its closed stdin is no error of ours.
  child.stdin.on('error', () => undefined);
  void pipeline(Readable.from(input.chunks(), { objectMode: false }), child.stdin).catch(() => undefined);
  let finished = false;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
    const { code, error } = await exited;
    if (input.error !== undefined) throw input.error;
    if (error?.code === 'ENOENT')
      throw new StorageError('TOOL_FAILED', `${opts.what}: ${file} is not installed (needed for ${kind})`);
    if (error) throw error;
    if (code !== 0) throw corrupt(kind, new Error(`${file}: ${stderr || `exit ${code}`}`), opts.what);
    finished = true;
  } finally {
    if (!finished) child.kill('SIGKILL');
  }
}

function isZlibError(err: unknown): boolean {
  return (
    typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code.startsWith('Z_')
  );
}

function corrupt(kind: Compression, err: unknown, what: string): StorageError {
  const why = oneLine(err instanceof Error ? err.message : String(err));
  return new StorageError('BAD_IMAGE', `${what}: the ${kind} data is corrupt (${why})`, { cause: err });
}
