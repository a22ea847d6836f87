import { describe, expect, it } from 'vitest';
import { chainFiles, formatBackupUrl, parseBackupUrl } from './backup-url.js';

const URL1 = 'grpc_backup://100/3/0:8a3454,1:f6e63e/var/lib/one/datastores/100/6/f6e63e/disk.0.1';

describe('grpc_backup:// pseudo-URLs', () => {
  it('parses the grammar of OpenNebula rsync URLs and formats it back', () => {
    const u = parseBackupUrl(URL1);
    expect(u).toEqual({
      dsId: 100,
      backupJobId: 3,
      chain: [
        { inc: 0, bid: '8a3454' },
        { inc: 1, bid: 'f6e63e' },
      ],
      path: '/var/lib/one/datastores/100/6/f6e63e/disk.0.1',
      vmId: 6,
      diskId: 0,
    });
    expect(formatBackupUrl(u)).toBe(URL1);
    expect(chainFiles(u)).toEqual([
      '/var/lib/one/datastores/100/6/8a3454/disk.0.0',
      '/var/lib/one/datastores/100/6/f6e63e/disk.0.1',
    ]);
  });

  it('takes an empty backup job id', () => {
    const u = parseBackupUrl('grpc_backup://102//0:0e6658/var/lib/one/datastores/102/21/0e6658/disk.2.0');
    expect(u.backupJobId).toBeUndefined();
    expect(u.diskId).toBe(2);
    expect(formatBackupUrl(u)).toBe(
      'grpc_backup://102//0:0e6658/var/lib/one/datastores/102/21/0e6658/disk.2.0',
    );
  });

  it.each([
    [
      'another scheme',
      'rsync://100/3/0:8a3454/var/lib/one/datastores/100/6/8a3454/disk.0.0',
      /does not start/,
    ],
    ['no path', 'grpc_backup://100/3/0:8a3454', /is not grpc_backup/],
    ['a datastore that is no number', 'grpc_backup://x/3/0:8a3454/d/6/8a3454/disk.0.0', /no datastore id/],
    ['a bad chain entry', 'grpc_backup://1/3/0-8a3454/d/6/8a3454/disk.0.0', /chain entry/],
    ['a backup id with a quote', "grpc_backup://1/3/0:8a34'4/d/6/8a34'4/disk.0.0", /chain entry/],
    ['increments going down', 'grpc_backup://1/3/1:8a3454,0:f6e63e/d/6/f6e63e/disk.0.0', /do not go up/],
    ['..', 'grpc_backup://1/3/0:8a3454/d/../6/8a3454/disk.0.0', /plain absolute path/],
    ['a blank', 'grpc_backup://1/3/0:8a3454/d x/6/8a3454/disk.0.0', /plain absolute path/],
    ['a shell character', 'grpc_backup://1/3/0:8a3454/d;rm/6/8a3454/disk.0.0', /plain absolute path/],
    ['a file that is no disk', 'grpc_backup://1/3/0:8a3454/d/6/8a3454/vm.xml', /disk\.<disk id>/],
    [
      'a path of another increment',
      'grpc_backup://1/3/0:8a3454,1:f6e63e/d/6/8a3454/disk.0.0',
      /last increment 1:f6e63e/,
    ],
    ['a huge URL', `grpc_backup://1/3/0:8a3454/${'a/'.repeat(5000)}6/8a3454/disk.0.0`, /longer than/],
  ])('refuses %s in one line', (_what, url, why) => {
    expect(() => parseBackupUrl(url, 'image 7 PATH')).toThrow(why);
    try {
      parseBackupUrl(url, 'image 7 PATH');
    } catch (err) {
      expect((err as Error).message).toMatch(/^image 7 PATH "/);
      expect((err as Error).message).not.toContain('\n');
    }
  });
});
