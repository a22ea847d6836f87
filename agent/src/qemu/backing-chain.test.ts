import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { parseBackingChain } from './backing-chain.js';

describe('parseBackingChain', () => {
  it('types every layer of --backing-chain output, top first', () => {
    const json = JSON.stringify([
      {
        filename: '/ds/0/42/disk.0.snap/1',
        format: 'qcow2',
        'virtual-size': 8,
        'actual-size': 4,
        'backing-filename': 'disk.0.snap/0',
        'full-backing-filename': '/ds/0/42/disk.0.snap/disk.0.snap/0',
        'backing-filename-format': 'qcow2',
      },
      { filename: '/ds/0/42/disk.0.snap/disk.0.snap/0', format: 'raw', 'virtual-size': 8 },
    ]);
    expect(parseBackingChain(json, 'x')).toEqual([
      {
        filename: '/ds/0/42/disk.0.snap/1',
        format: 'qcow2',
        virtualSize: 8,
        actualSize: 4,
        backingFilename: 'disk.0.snap/0',
        fullBackingFilename: '/ds/0/42/disk.0.snap/disk.0.snap/0',
        backingFormat: 'qcow2',
      },
      { filename: '/ds/0/42/disk.0.snap/disk.0.snap/0', format: 'raw', virtualSize: 8, actualSize: 0 },
    ]);
  });

  it('accepts the single object of plain info', () => {
    expect(parseBackingChain('{"filename":"f","format":"raw","virtual-size":1}', 'x')).toHaveLength(1);
  });

  it.each(['not json', '[]', '[{"format":"raw"}]'])('refuses %s as TOOL_FAILED', (text) => {
    expect(() => parseBackingChain(text, 'image info host01:/x')).toThrow(StorageError);
  });
});
