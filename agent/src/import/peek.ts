/** A stream's first bytes, and the whole stream again (those bytes first) for whoever reads on. */
export interface Peeked {
  head: Buffer;
  /** Every byte of the stream, from the first. Read it once. */
  stream: AsyncGenerator<Buffer>;
  /** Lets go of the stream when it will not be read (or not to its end): its source is closed. */
  close(): Promise<void>;
}

/**
 * Reads `input` until at least `bytes` have arrived or it ends, without losing them: the format of
 * an upload (its compression, then its image format) is decided from its first bytes, before the
 * rest is read. `head` holds at most `bytes` bytes (fewer only when the stream is shorter).
 */
export async function peek(input: AsyncIterable<Buffer>, bytes: number): Promise<Peeked> {
  const it = input[Symbol.asyncIterator]();
  const taken: Buffer[] = [];
  let have = 0;
  let done = false;
  while (have < bytes) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    taken.push(r.value);
    have += r.value.length;
  }
  const all = Buffer.concat(taken);
  let started = false;
  async function* stream(): AsyncGenerator<Buffer> {
    started = true;
    if (all.length > 0) yield all;
    if (done) return;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    } finally {
      await it.return?.();
    }
  }
  const rest = stream();
  return {
    head: all.subarray(0, bytes),
    stream: rest,
    close: async () => {
      // A generator never started runs no `finally` on return(): close the source directly then.
      if (started) await rest.return(undefined);
      else if (!done) await it.return?.();
    },
  };
}
