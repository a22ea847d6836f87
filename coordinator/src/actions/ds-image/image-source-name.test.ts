import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { imageSourceName } from './image-source-name.js';

/** fs's generate_image_hash, computed by the same tools: printf then md5sum. */
function goldenHash(seconds: number, id: number): string {
  const text = execFileSync('printf', ['%s:%s\\n', String(seconds), String(id)]);
  return execFileSync('md5sum', [], { input: text }).toString().split(' ')[0] as string;
}

describe('SOURCE naming', () => {
  it.each([
    [1_700_000_000_999, 7, '/var/lib/one//datastores/1', '/var/lib/one/datastores/1'],
    [1_234_567_890_000, 0, '/var/lib/one/datastores/100/', '/var/lib/one/datastores/100'],
    [0, 4242, '/srv//one/ds', '/srv/one/ds'],
  ])('at %d ms, image %d in %s: md5 of "<seconds>:<id>\\n"', (nowMs, id, base, cleaned) => {
    const hash = goldenHash(Math.floor(nowMs / 1000), id);
    expect(hash).toMatch(/^[0-9a-f]{32}$/);
    expect(imageSourceName(base, id, nowMs, `image ${id}`)).toBe(`${cleaned}/${hash}`);
  });

  it('changes with the second and the id, not within a second', () => {
    const a = imageSourceName('/ds', 7, 1_700_000_000_000, 'image 7');
    expect(imageSourceName('/ds', 7, 1_700_000_000_999, 'image 7')).toBe(a);
    expect(imageSourceName('/ds', 7, 1_700_000_001_000, 'image 7')).not.toBe(a);
    expect(imageSourceName('/ds', 8, 1_700_000_000_000, 'image 8')).not.toBe(a);
  });

  it.each(['', 'var/lib/one/datastores/1', '~/ds'])('refuses BASE_PATH %j', (base) => {
    expect(() => imageSourceName(base, 7, 0, 'image 7')).toThrow(
      /^image 7: BASE_PATH .* is not an absolute path$/,
    );
  });
});
