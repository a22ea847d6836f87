import { describe, expect, it } from 'vitest';
import { vmXml } from '../../../../cli/src/demo/fake-oned/fixtures.js';
import { parseVm } from '../../oned/vm-xml.js';
import { backupIds } from './backup-call.js';

const vm = (backupConfig: Record<string, string | number>) => parseVm(vmXml({ id: 7, backupConfig }), 7);

describe('backup ids (docs/opennebula/backups.md)', () => {
  it.each([
    [{}, { mode: 'FULL', backupId: 0, parentId: -1 }],
    [
      { MODE: 'FULL', LAST_INCREMENT_ID: 4 },
      { mode: 'FULL', backupId: 0, parentId: -1 },
    ],
    [{ MODE: 'INCREMENT' }, { mode: 'INCREMENT', backupId: 0, parentId: -1 }],
    [
      { MODE: 'INCREMENT', LAST_INCREMENT_ID: -1 },
      { mode: 'INCREMENT', backupId: 0, parentId: -1 },
    ],
    [
      { MODE: 'INCREMENT', LAST_INCREMENT_ID: 3, INCREMENT_MODE: 'CBT' },
      { mode: 'INCREMENT', backupId: 4, parentId: 3 },
    ],
  ])('%j', (config, expected) => {
    expect(backupIds(vm(config))).toEqual(expected);
  });

  it('refuses what it cannot do, naming the attribute', () => {
    expect(() => backupIds(vm({ MODE: 'INCREMENT', INCREMENT_MODE: 'SNAPSHOT' }))).toThrow(
      /INCREMENT_MODE is "SNAPSHOT": one-storage supports CBT/,
    );
    expect(() => backupIds(vm({ MODE: 'WEEKLY' }))).toThrow(/BACKUP_CONFIG\/MODE is "WEEKLY"/);
    expect(() => backupIds(vm({ MODE: 'INCREMENT', LAST_INCREMENT_ID: 'x' }))).toThrow(
      /LAST_INCREMENT_ID "x"/,
    );
  });
});
