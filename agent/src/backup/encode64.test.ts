import { describe, expect, it } from 'vitest';
import { encode64 } from './encode64.js';

describe('encode64 (Ruby Base64.encode64)', () => {
  it.each([
    ['', ''],
    ['a', 'YQ==\n'],
    // 45 bytes → exactly 60 characters, one line.
    ['x'.repeat(45), `${'eHh4'.repeat(15)}\n`],
    // 46 bytes → 60 + 4 characters, two lines.
    ['x'.repeat(46), `${'eHh4'.repeat(15)}\neA==\n`],
  ])('%j', (input, expected) => {
    expect(encode64(input)).toBe(expected);
  });

  it('decodes back to the input', () => {
    const xml = `<VM><ID>7</ID><NAME>${'n'.repeat(500)}</NAME></VM>`;
    const out = encode64(xml);
    expect(out.split('\n').every((l) => l.length <= 60)).toBe(true);
    expect(Buffer.from(out.replace(/\n/g, ''), 'base64').toString()).toBe(xml);
  });
});
