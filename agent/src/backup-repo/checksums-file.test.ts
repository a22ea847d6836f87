import { describe, expect, it } from 'vitest';
import { formatChecksums, parseChecksums } from './checksums-file.js';

const A = 'a'.repeat(64);
const B = '0123456789abcdef'.repeat(4);

describe('SHA256SUMS', () => {
  it('is written as sha256sum writes it, sorted by name, and read back', () => {
    const text = formatChecksums([
      { name: 'vm.xml', sha256: B },
      { name: 'disk.0.1', sha256: A },
    ]);
    expect(text).toBe(`${A}  disk.0.1\n${B}  vm.xml\n`);
    expect([...parseChecksums(text, 'x')]).toEqual([
      ['disk.0.1', A],
      ['vm.xml', B],
    ]);
  });

  it.each([
    [`${A}  disk.0.0`, /does not end with a newline/],
    [`${A} disk.0.0\n`, /line 1 is not/],
    [`${A.toUpperCase()}  disk.0.0\n`, /line 1 is not/],
    [`${A}  ../disk.0.0\n`, /line 1 is not/],
    [`${A}  sub/disk.0.0\n`, /line 1 is not/],
    [`${A}  .disk.0.0.partial\n`, /line 1 is not/],
    [`${A}  SHA256SUMS\n`, /line 1 is not/],
    [`${A}  disk.0.0\n\n`, /line 2 is not/],
    [`${A}  disk.0.0\n${B}  disk.0.0\n`, /line 2 lists disk.0.0 a second time/],
    [`${A.slice(1)}  disk.0.0\n`, /line 1 is not/],
  ])('refuses %j', (text, why) => {
    expect(() => parseChecksums(text, 'backup01:/b/7/abcdef/SHA256SUMS')).toThrow(why);
    expect(() => parseChecksums(text, 'backup01:/b/7/abcdef/SHA256SUMS')).toThrow(
      /^backup01:\/b\/7\/abcdef\/SHA256SUMS: /,
    );
  });

  it('refuses to write a name that is not a plain file name or a digest that is not hex', () => {
    expect(() => formatChecksums([{ name: 'a/b', sha256: A }])).toThrow(/cannot list/);
    expect(() => formatChecksums([{ name: 'disk.0.0', sha256: 'xyz' }])).toThrow(/not a SHA-256/);
    expect(() =>
      formatChecksums([
        { name: 'd', sha256: A },
        { name: 'd', sha256: B },
      ]),
    ).toThrow(/twice/);
  });
});
