import { describe, expect, it } from 'vitest';
import { arg, signature, type Signature } from './action-args.js';
import {
  BACKUP_HOOK_ARGS,
  CLONE_ARGS,
  CONTEXT_ARGS,
  CPDS_ARGS,
  MIGRATE_ARGS,
  MONITOR_ARGS,
} from './oned-signatures.js';
import { argumentIndex, parseActionArgs, usageLine } from './parse-action-args.js';

describe('other argument helpers', () => {
  it('expectArgs names the usage', () => {
    const sig = signature([
      arg('SOURCE', 'host-path', 'fe:SOURCE'),
      arg('destination', 'host-path', 'host:path'),
      arg('vm_id', 'id'),
      arg('ds_id', 'id'),
    ]);
    expect(() => parseActionArgs(sig, ['a'])).toThrowError(
      'expected 4 arguments (fe:SOURCE host:path vm_id ds_id), got 1',
    );
  });
});

describe('parseActionArgs', () => {
  it('gives each declared argument, typed', () => {
    expect(parseActionArgs(CLONE_ARGS, ['fe:/a//b', 'host01:/ds/0/7/disk.0', '7', '0'])).toEqual({
      SOURCE: { host: 'fe', path: '/a/b' },
      destination: { host: 'host01', path: '/ds/0/7/disk.0' },
      vm_id: 7,
      ds_id: 0,
    });
    expect(parseActionArgs(CPDS_ARGS, ['h:/ds/0/7/disk.2', '/img/x', '-1', '7', '1'])).toMatchObject({
      disk: { host: 'h', path: '/ds/0/7/disk.2', diskId: 2 },
      SOURCE: '/img/x',
      snapshot_id: -1,
    });
  });

  it.each([
    [CLONE_ARGS, ['fe:/a', 'host01', '7', '0'], 'argument destination "host01" is not host:/absolute/path'],
    [CLONE_ARGS, ['fe:/a', 'h:/b', 'vm', '0'], 'argument vm_id "vm" is not a number'],
    [CPDS_ARGS, ['h:/ds/0/7', '/img/x', '0', '7', '1'], 'argument disk "h:/ds/0/7" does not name disk.N'],
    [CPDS_ARGS, ['h:/ds/0/7/disk.0', 'x/y', '0', '7', '1'], 'argument SOURCE "x/y" is not an absolute path'],
    [MIGRATE_ARGS, ['-bad', 'h2', '/d', '1', '0'], 'argument source_host "-bad" is not a hostname'],
    [MIGRATE_ARGS, ['h1', 'h2', 'd', '1', '0'], 'argument remote_system_dir "d" is not an absolute path'],
    [
      BACKUP_HOOK_ARGS,
      ['h:/d', '0;1', 'one-7', '7', '0'],
      `argument disk_ids "0;1" is not disk ids joined by ':'`,
    ],
  ] as Array<[Signature, string[], string]>)(
    '%#: refuses a malformed argument in one line',
    (sig, args, message) => {
      expect(() => parseActionArgs(sig, args)).toThrowError(message);
    },
  );

  it.each([
    [
      CONTEXT_ARGS,
      3,
      'expected at least 4 arguments (context.sh [file[:name] ...] host:remote_system_ds/disk.i vm_id ds_id), got 3',
    ],
    [
      MIGRATE_ARGS,
      4,
      'expected 5 or 6 arguments (source_host destination_host remote_system_dir vm_id ds_id [nested_from_tm]), got 4',
    ],
    [
      BACKUP_HOOK_ARGS,
      4,
      'expected 6 arguments (host:vm_dir disk_ids deploy_id bj_id|- vm_id ds_id) or 5 (host:vm_dir disk_ids deploy_id vm_id ds_id), got 4',
    ],
    [MONITOR_ARGS, 0, 'expected 1 arguments (ds_id), got 0'],
  ] as Array<[Signature, number, string]>)('%#: a wrong count names the usage', (sig, count, message) => {
    expect(() =>
      parseActionArgs(
        sig,
        Array.from({ length: count }, () => 'x'),
      ),
    ).toThrowError(message);
  });

  it('takes the optional arguments where oned puts them', () => {
    expect(parseActionArgs(MIGRATE_ARGS, ['h1', 'h2', '/d//7/', '7', '0'])).toMatchObject({
      remote_system_dir: '/d/7',
      nested_from_tm: undefined,
    });
    expect(parseActionArgs(MIGRATE_ARGS, ['h1', 'h2', '/d', '7', '0', 'grpc']).nested_from_tm).toBe('grpc');
    expect(parseActionArgs(BACKUP_HOOK_ARGS, ['h:/d', '0:2', 'one-7', '7', '0'])).toMatchObject({
      disk_ids: [0, 2],
      bj_id: undefined,
      vm_id: 7,
    });
    expect(parseActionArgs(BACKUP_HOOK_ARGS, ['h:/d', '0', 'one-7', '-', '7', '0']).bj_id).toBe('-');
    expect(parseActionArgs(CONTEXT_ARGS, ['/c.sh', '/f:g', 'h:/ds/0/7/disk.1', '7', '0']).files).toEqual([
      '/c.sh',
      '/f:g',
    ]);
  });
});

describe('argumentIndex (the journal vm_id)', () => {
  it.each([
    [CLONE_ARGS, 4, 2],
    [CLONE_ARGS, 3, undefined],
    [CONTEXT_ARGS, 6, 4],
    [MIGRATE_ARGS, 6, 3],
    [BACKUP_HOOK_ARGS, 6, 4],
    [BACKUP_HOOK_ARGS, 5, 3],
    [MONITOR_ARGS, 1, undefined],
  ] as Array<[Signature, number, number | undefined]>)('%#', (sig, count, index) => {
    expect(argumentIndex(sig, 'vm_id', count)).toBe(index);
  });

  it('usageLine brackets a trailing optional argument', () => {
    expect(usageLine(MIGRATE_ARGS)).toBe(
      'source_host destination_host remote_system_dir vm_id ds_id [nested_from_tm]',
    );
  });
});
