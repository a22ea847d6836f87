import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { MIB } from '../../../common/src/units.js';

/** Bytes are copied into batches of this size, each handed to the worker whole. */
const BATCH_BYTES = MIB;
/**
 * Below this many bytes the hashes run inline when the digest is asked for: starting a worker
 * (about 20 ms of CPU) costs more than hashing a few MiB.
 */
const HASH_WORKER_MIN_BYTES = 8 * MIB;
/** The producer waits (update returns a promise) while more than this is queued for the worker... */
const HIGH_WATER_BYTES = 32 * MIB;
/** ...until the queue is down to this. */
const LOW_WATER_BYTES = 8 * MIB;

/**
 * The worker's whole program (CommonJS, evaluated: no file to locate from source or from dist).
 * It answers every message in order: the length of a batch once hashed, the hex digests at the end.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = workerData.map((a) => createHash(a));
parentPort.on('message', (m) => {
  if (m.end) return parentPort.postMessage(hashes.map((h) => h.digest('hex')));
  const bytes = new Uint8Array(m.buffer, 0, m.length);
  for (const h of hashes) h.update(bytes);
  parentPort.postMessage(m.length);
});
`;

/**
 * Hashes of a byte stream computed off the event loop, so the import's thread only receives,
 * decompresses and writes (docs/benchmarks.md#node-dist-benchbenchimage-cprunjs-registering-an-image-datastore-cp).
 * Chunks are copied into 1 MiB batches (a copy costs a fiftieth of an MD5) whose memory is
 * transferred, not shared, to the worker: V8 writes into a SharedArrayBuffer far slower. Short
 * streams never start the worker. `update` returns a promise to wait for when the worker is behind.
 */
export class HashWorker {
  private worker: Worker | undefined;
  private batch = Buffer.allocUnsafeSlow(BATCH_BYTES);
  private filled = 0;
  /** Full batches kept until the stream proves long enough for the worker. */
  private held: Buffer[] = [];
  private total = 0;
  private queued = 0;
  private resume: (() => void) | undefined;
  private result: ((digests: string[] | undefined) => void) | undefined;
  private failure: Error | undefined;

  constructor(private readonly algorithms: readonly string[]) {}

  update(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    this.total += chunk.length;
    for (let at = 0; at < chunk.length;) {
      const n = chunk.copy(this.batch, this.filled, at);
      this.filled += n;
      at += n;
      if (this.filled === BATCH_BYTES) this.flush();
    }
    if (this.queued <= HIGH_WATER_BYTES) return undefined;
    return new Promise((resolve) => (this.resume = resolve));
  }

  /** The hex digests, one per algorithm, of every byte given; the worker is stopped. */
  async digests(): Promise<string[]> {
    if (this.failure) throw this.failure;
    if (!this.worker) {
      const hashes = this.algorithms.map((a) => createHash(a));
      for (const b of [...this.held, this.batch.subarray(0, this.filled)])
        for (const h of hashes) h.update(b);
      return hashes.map((h) => h.digest('hex'));
    }
    if (this.filled > 0) this.flush();
    const worker = this.worker;
    const got = await new Promise<string[] | undefined>((resolve) => {
      this.result = resolve;
      worker.postMessage({ end: true });
    });
    await this.close();
    if (!got) throw this.failure ?? new Error('the hashing worker gave no digest');
    return got;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.failure ??= new Error('hashing closed');
    this.worker = undefined;
    await worker?.terminate();
  }

  private flush(): void {
    const full = this.batch;
    const length = this.filled;
    this.batch = Buffer.allocUnsafeSlow(BATCH_BYTES);
    this.filled = 0;
    if (!this.worker) {
      this.held.push(full.subarray(0, length));
      if (this.total < HASH_WORKER_MIN_BYTES) return;
      this.start();
      return;
    }
    this.send(full, length);
  }

  private start(): void {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: this.algorithms });
    worker.unref();
    worker.on('message', (m: unknown) => {
      if (typeof m === 'number') {
        this.queued -= m;
        if (this.resume && this.queued <= LOW_WATER_BYTES) this.release();
      } else this.result?.(m as string[]);
    });
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', () => this.fail(new Error('the hashing worker stopped')));
    this.worker = worker;
    for (const b of this.held) this.send(b, b.length);
    this.held = [];
  }

  private send(b: Buffer, length: number): void {
    this.queued += length;
    // Batches are allocated unpooled: each owns its ArrayBuffer, which is moved to the worker.
    this.worker?.postMessage({ buffer: b.buffer, length }, [b.buffer as ArrayBuffer]);
  }

  private release(): void {
    const resume = this.resume;
    this.resume = undefined;
    resume?.();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.release();
    this.result?.(undefined);
  }
}
