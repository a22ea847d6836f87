import { Worker } from 'node:worker_threads';
import type { Block } from './block-pool.js';
import { runningDigest, type DigestAlgorithm, type RunningDigest } from './digest-algorithms.js';
import { MIB } from '../../../common/src/units.js';

/**
 * The digest (digest-algorithms.ts) of a sequence of data streams (one per file, in order), fed with pooled blocks.
 * `update` calls `done` once the block's bytes are hashed (the block may then be reused);
 * `digest` returns the digest of everything since the previous digest, and starts the next stream.
 */
export interface StreamHasher {
  update(block: Block, offset: number, length: number, done: () => void): void;
  digest(): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * Below this many data bytes a transfer hashes SHA-256 on the main thread: starting a worker (about
 * 20 ms of CPU) costs more than hashing a few MiB, and VM directories hold many small files.
 */
export const WORKER_HASH_MIN_BYTES = 32 * MIB;

/**
 * The hasher for a transfer of `dataBytes`: SHA-256 off the main thread when that pays. XXH3 always
 * runs inline: at 0.06 CPU-s per GiB it costs less than handing each block to a worker and back.
 */
export function streamHasher(dataBytes: number, algorithm: DigestAlgorithm = 'sha256'): StreamHasher {
  return algorithm === 'sha256' && dataBytes >= WORKER_HASH_MIN_BYTES
    ? new WorkerHasher()
    : new InlineHasher(algorithm);
}

export class InlineHasher implements StreamHasher {
  private hash: RunningDigest;

  constructor(private readonly algorithm: DigestAlgorithm = 'sha256') {
    this.hash = runningDigest(algorithm);
  }

  update(block: Block, offset: number, length: number, done: () => void): void {
    this.hash.update(block.buf.subarray(offset, offset + length));
    done();
  }

  digest(): Promise<Buffer> {
    const d = this.hash.digest();
    this.hash = runningDigest(this.algorithm);
    return Promise.resolve(d);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The worker's whole program (CommonJS, evaluated: no file to locate from source or from dist).
 * It answers every message, in order: 0 for an update, the 32-byte digest for a digest request.
 * A block's memory is sent once, the first time the block is used, then named by id.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const memory = new Map();
let hash = createHash('sha256');
parentPort.on('message', (m) => {
  if (m.digest) {
    const d = hash.digest();
    hash = createHash('sha256');
    parentPort.postMessage(d);
    return;
  }
  if (m.memory) memory.set(m.id, m.memory);
  hash.update(new Uint8Array(memory.get(m.id), m.offset, m.length));
  parentPort.postMessage(0);
});
`;

/**
 * SHA-256 in a worker thread over shared memory, so the sender's main thread only reads and
 * writes (and encrypts) while the worker hashes the same blocks in parallel. Messages are answered
 * in order, so one FIFO of callbacks matches answers to requests. If the worker dies, pending and
 * later updates still release their blocks (the transfer unwinds normally) and digest() rejects.
 *
 * Only for memory we fill without JavaScript copying into it (file reads): V8 copies into a
 * SharedArrayBuffer about three times slower than into ordinary memory, and transferring ordinary
 * buffers to a worker and back costs more in postMessage and GC than hashing saves.
 */
export class WorkerHasher implements StreamHasher {
  private readonly worker: Worker;
  private readonly replies: ((value: unknown) => void)[] = [];
  private readonly known = new WeakSet<SharedArrayBuffer>();
  private failure: Error | undefined;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (value: unknown) => this.replies.shift()?.(value));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', () => this.fail(new Error('the hashing worker stopped')));
  }

  update(block: Block, offset: number, length: number, done: () => void): void {
    if (this.failure) return done();
    const first = !this.known.has(block.memory);
    this.known.add(block.memory);
    this.replies.push(() => done());
    this.worker.postMessage(
      first ? { id: block.id, memory: block.memory, offset, length } : { id: block.id, offset, length },
    );
  }

  digest(): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.replies.push((value) => {
        if (value instanceof Uint8Array) resolve(Buffer.from(value.buffer, value.byteOffset, value.length));
        else reject(this.failure ?? new Error('the hashing worker gave no digest'));
      });
      this.worker.postMessage({ digest: true });
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error('hasher closed');
    await this.worker.terminate();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    // Unblock whoever waits: updates release their blocks, a digest rejects (it gets no Uint8Array).
    for (let r = this.replies.shift(); r; r = this.replies.shift()) r(undefined);
  }
}
