import { describe, expect, it } from 'vitest';
import { parseTempName, tempName, tempNameBeside } from './temp-name.js';

describe('temporary names', () => {
  it('are hidden beside the destination, with a random suffix, and read back by parseTempName', () => {
    expect(tempNameBeside('/ds/0/disk.0')).toMatch(/^\/ds\/0\/\.disk\.0\.tmp-[0-9a-f]{12}$/);
    expect(tempNameBeside('/ds/0/disk.0.snap', 'old')).toMatch(
      /^\/ds\/0\/\.disk\.0\.snap\.old-[0-9a-f]{12}$/,
    );
    const owned = tempName('disk.0', 'tmp', 'host-b');
    expect(owned).toMatch(/^\.disk\.0\.tmp-host-b-[0-9a-f]{12}$/);
    expect(parseTempName(owned)).toEqual({
      base: 'disk.0',
      tag: 'tmp',
      rest: owned.slice('.disk.0.tmp-'.length),
    });
    expect(parseTempName('.disk.0.old-0123456789ab')).toEqual({
      base: 'disk.0',
      tag: 'old',
      rest: '0123456789ab',
    });
    expect(parseTempName('disk.0')).toBeUndefined();
  });
});
