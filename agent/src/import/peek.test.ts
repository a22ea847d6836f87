import { describe, expect, it } from 'vitest';
import { peek } from './peek.js';

async function* source(parts: string[], closed: string[]): AsyncGenerator<Buffer> {
  try {
    for (const p of parts) yield Buffer.from(p);
  } finally {
    closed.push('closed');
  }
}

async function all(it: AsyncIterable<Buffer>): Promise<string> {
  let s = '';
  for await (const c of it) s += c.toString();
  return s;
}

describe('peek', () => {
  it.each([
    [['abc', 'defgh', 'ij'], 4, 'abcd'],
    [['ab'], 4, 'ab'],
    [[], 4, ''],
  ])('gives the first bytes of %j and the whole stream again', async (parts, n, head) => {
    const closed: string[] = [];
    const p = await peek(source(parts, closed), n);
    expect(p.head.toString()).toBe(head);
    expect(await all(p.stream)).toBe(parts.join(''));
    expect(closed).toEqual(['closed']);
  });

  it('close() ends the source when the rest is never read', async () => {
    const closed: string[] = [];
    const p = await peek(source(['abcdef', 'g', 'h'], closed), 2);
    await p.close();
    expect(closed).toEqual(['closed']);
  });
});
