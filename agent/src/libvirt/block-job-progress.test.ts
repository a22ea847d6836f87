import { describe, expect, it } from 'vitest';
import type { Progress } from '../jobs/job-registry.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { blockJobProgress } from './block-job-progress.js';

/**
 * Captured stderr of `virsh -q blockcopy DOM vda --dest F --format qcow2 --wait --verbose --finish
 * --transient-job --bandwidth 50` (libvirt 9, Debian 12) on a running TCG domain, 256 MiB disk.
 */
const CAPTURED =
  '\rBlock Copy: [  0 %]\rBlock Copy: [ 12 %]\rBlock Copy: [ 25 %]\rBlock Copy: [ 31 %]' +
  '\rBlock Copy: [ 43 %]\rBlock Copy: [ 50 %]\rBlock Copy: [ 62 %]\rBlock Copy: [ 68 %]' +
  '\rBlock Copy: [ 81 %]\rBlock Copy: [ 93 %]\rBlock Copy: [ 99 %]\rBlock Copy: [100 %]';

describe('blockJobProgress (virsh --wait --verbose)', () => {
  it('adds --verbose and reads every percentage of a captured output as a share of the total', () => {
    const seen: Progress[] = [];
    const w = blockJobProgress({ report: (p) => seen.push(p), phase: 'block-copy', total: 1000 });
    expect(w.args).toEqual(['--verbose']);
    for (const ch of CAPTURED) w.options.onStderr?.(Buffer.from(ch));
    expect(seen[0]).toEqual({ done: 0, total: 1000, phase: 'block-copy' });
    expect(seen.slice(1).map((p) => p.done)).toEqual([
      0, 120, 250, 310, 430, 500, 620, 680, 810, 930, 990, 1000,
    ]);
    w.finish();
    expect(seen.at(-1)).toEqual({ done: 1000, total: 1000 });
  });

  it('changes nothing without a progress sink', () => {
    const w = blockJobProgress(undefined);
    expect(w.args).toEqual([]);
    expect(w.options).toEqual({});
  });

  it("keeps the figures out of a failed job's error message, which keeps the tool's own words", async () => {
    const w = blockJobProgress({ report: () => undefined, phase: 'block-copy', total: 1000 });
    const script = `process.stderr.write(${JSON.stringify(`${CAPTURED.slice(0, 40)}\rerror: block copy failed: disk full`)}); process.exit(1)`;
    const failed = runTool(process.execPath, ['-e', script], { what: 'copy disk.0', ...w.options });
    await expect(failed).rejects.toThrow(/^copy disk\.0: \S+ failed: error: block copy failed: disk full$/);
  });
});
