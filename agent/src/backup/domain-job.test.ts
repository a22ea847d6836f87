import { describe, expect, it } from 'vitest';
import { jobStatsOf } from './domain-job.js';

// Captured from `virsh -q domjobinfo DOM --rawstats` (libvirt 9, Debian 12) during and after a
// push-mode backup-begin of a running TCG domain's 256 MiB disk.
const RUNNING =
  'Job type: 2\n\noperation: 9\ntime_elapsed: 75\ndisk_total: 268435456\ndisk_processed: 202375168\ndisk_remaining: 66060288\n';
const NONE = 'Job type: 0\n\n';

describe('jobStatsOf (domjobinfo --rawstats)', () => {
  it('reads the disk figures of a running backup job', () => {
    expect(jobStatsOf(RUNNING)).toEqual({ figures: { processed: 202375168, total: 268435456 } });
  });

  it('no job: undefined; a job without figures yet: running, no figures', () => {
    expect(jobStatsOf(NONE)).toBeUndefined();
    expect(jobStatsOf('Job type: 2\n\noperation: 9\n')).toEqual({});
  });
});
