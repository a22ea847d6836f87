/**
 * A reusable piece of memory for the sending side of the data path. Backed by its own
 * SharedArrayBuffer so the hashing worker (stream-hasher.ts) reads the very bytes the main thread
 * read from disk and hands to the socket: the main thread moves bytes, the worker hashes them at
 * the same time, and nothing is copied or transferred between the two.
 */
export interface Block {
  /** Stable within one pool; the hashing worker keys its view of the memory by it. */
  readonly id: number;
  readonly memory: SharedArrayBuffer;
  readonly buf: Buffer;
}

/**
 * Equal blocks, recycled: no per-chunk allocation, and at most `limit` blocks per transfer, so
 * memory stays bounded; `acquire` waits while all are out.
 */
export class BlockPool {
  private readonly free: Block[] = [];
  private readonly waiting: ((b: Block) => void)[] = [];
  private created = 0;

  constructor(
    readonly blockBytes: number,
    private readonly limit: number,
  ) {}

  acquire(): Promise<Block> {
    const b = this.free.pop() ?? (this.created < this.limit ? this.allocate() : undefined);
    return b ? Promise.resolve(b) : new Promise((resolve) => this.waiting.push(resolve));
  }

  release(b: Block): void {
    const next = this.waiting.shift();
    if (next) next(b);
    else this.free.push(b);
  }

  private allocate(): Block {
    const memory = new SharedArrayBuffer(this.blockBytes);
    return { id: this.created++, memory, buf: Buffer.from(memory) };
  }
}
