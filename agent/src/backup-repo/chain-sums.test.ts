import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chainShape } from './chain-paths.js';
import { readChainSums } from './chain-sums.js';
import { pinnedChainName } from './pinned-chain.js';

const dir = mkdtempSync(join(tmpdir(), 'chain-sums-'));
const HEX = 'a'.repeat(64);
const sums = (text: string): Promise<Map<string, string>> => {
  const f = join(dir, `s-${Math.random()}`);
  writeFileSync(f, text);
  return readChainSums(f, 'b:/x/SHA256SUMS');
};

describe('readChainSums (docs/backups.md#restoring-from-the-repository)', () => {
  it('reads sha256sum lines', async () => {
    expect(await sums(`${HEX}  disk.0.0\n${'b'.repeat(64)}  vm.xml\n`)).toEqual(
      new Map([
        ['disk.0.0', HEX],
        ['vm.xml', 'b'.repeat(64)],
      ]),
    );
  });

  it.each([
    ['upper-case hex', `${'A'.repeat(64)}  disk.0.0\n`, /line 1 is not/],
    ['one space', `${HEX} disk.0.0\n`, /line 1 is not/],
    ['binary-mode star', `${HEX} *disk.0.0\n`, /line 1 is not/],
    ['a path', `${HEX}  ../disk.0.0\n`, /line 1 is not/],
    ['a blank line', `${HEX}  disk.0.0\n\n`, /line 2 is not/],
    ['a name twice', `${HEX}  disk.0.0\n${HEX}  disk.0.0\n`, /lists disk\.0\.0 a second time/],
  ])('refuses %s as CHECKSUM_MISMATCH naming the list', async (_what, text, message) => {
    await expect(sums(text)).rejects.toMatchObject({ reason: 'CHECKSUM_MISMATCH', message });
  });

  it('a missing list is NOT_FOUND naming it', async () => {
    await expect(readChainSums(join(dir, 'none'), 'b:/x/SHA256SUMS')).rejects.toMatchObject({
      reason: 'NOT_FOUND',
      message: 'b:/x/SHA256SUMS is missing',
    });
  });
});

describe('chainShape', () => {
  const f = (vm: string, bid: string, name: string): string => `/r/100/${vm}/${bid}/${name}`;
  it('takes one disk of one VM, increments going up', () => {
    const s = chainShape([f('6', 'aaaaaa', 'disk.1.0'), f('6', 'bbbbbb', 'disk.1.3')], 'w');
    expect(s).toMatchObject({ vmDir: '/r/100/6', diskId: 1 });
    expect(s.files.map((x) => [x.dir, x.name, x.inc])).toEqual([
      ['/r/100/6/aaaaaa', 'disk.1.0', 0],
      ['/r/100/6/bbbbbb', 'disk.1.3', 3],
    ]);
  });

  it.each([
    ['an empty chain', [], /chain is empty/],
    ['another shape', ['/r/100/6/aaaaaa/vm.xml'], /is not <base>/],
    ['a relative path', ['r/100/6/aaaaaa/disk.0.0'], /is not <base>/],
    ['two disks', [f('6', 'aaaaaa', 'disk.0.0'), f('6', 'bbbbbb', 'disk.1.1')], /is not of disk 0/],
    ['two VMs', [f('6', 'aaaaaa', 'disk.0.0'), f('7', 'bbbbbb', 'disk.0.1')], /is not in \/r\/100\/6/],
    ['a repeated backup', [f('6', 'aaaaaa', 'disk.0.0'), f('6', 'aaaaaa', 'disk.0.1')], /appears twice/],
    [
      'increments going down',
      [f('6', 'aaaaaa', 'disk.0.1'), f('6', 'bbbbbb', 'disk.0.1')],
      /does not come after/,
    ],
  ])('refuses %s', (_what, chain, message) => {
    expect(() => chainShape(chain, 'w')).toThrow(message);
  });
});

describe('pinnedChainName', () => {
  it('names every layer with its file, the oldest with no backing', () => {
    const name = pinnedChainName(['/a/x,y', '/b/"q"']);
    expect(name.startsWith('json:')).toBe(true);
    expect(JSON.parse(name.slice(5))).toEqual({
      driver: 'qcow2',
      file: { driver: 'file', filename: '/b/"q"' },
      backing: { driver: 'qcow2', file: { driver: 'file', filename: '/a/x,y' }, backing: null },
    });
  });
});
