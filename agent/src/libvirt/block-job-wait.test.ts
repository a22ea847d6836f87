import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../../../common/src/tools/run-tool.js';
import {
  type TestDomain,
  destroyIfRunning,
  diskSource,
  ensureLibvirt,
  startDomain,
} from '../../../test/support/libvirt.js';
import { makeTempDir } from '../../../test/support/agent/agent-fixture.js';
import type { Progress } from '../jobs/job-registry.js';
import { watchBlockJob } from './block-job-wait.js';
import { DEFAULT_LIBVIRT_URI, virsh } from './virsh.js';

// A block job's end is libvirt's event, not a poll: with the poll set to ten minutes, a job
// slowed down to take a few seconds (--bandwidth) is still seen to end within the test's limit.
// The first look at the job (made at once) finds it running, so only the event can end the wait.

const MIB = 1024 * 1024;
const SIZE = 32 * MIB;
const DOMAIN = 'one-bjw1';
const NEVER_MS = 10 * 60_000;
const base = await makeTempDir('block-job-wait-');
chmodSync(base, 0o755);
const lower = join(base, 'lower.qcow2');
const top = join(base, 'top.qcow2');
const opts = { uri: DEFAULT_LIBVIRT_URI, what: 'block job test' };
let dom: TestDomain;

const qemuImg = (...a: string[]) => runTool('qemu-img', a);

/** A block copy of the running disk into `dest`, slowed to `mibPerS` (started without --wait). */
const startCopy = (dest: string, mibPerS: number) =>
  virsh(
    [
      'blockcopy',
      DOMAIN,
      'vda',
      '--dest',
      dest,
      '--format',
      'qcow2',
      '--transient-job',
      '--bandwidth',
      String(mibPerS),
    ],
    opts,
  );

beforeAll(async () => {
  await ensureLibvirt();
  await destroyIfRunning(DOMAIN);
  await qemuImg('create', '-q', '-f', 'qcow2', lower, String(SIZE));
  // 8 MiB of data in the lower layer: the pull (2 MiB/s) and the copy (8 MiB/s of the whole disk)
  // take about 4 s each.
  await runTool('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a 0 ${8 * MIB}`, lower]);
  await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', lower, top);
  for (const f of [lower, top]) chmodSync(f, 0o666);
  dom = await startDomain(DOMAIN, [{ target: 'vda', path: top, format: 'qcow2' }], base);
}, 120_000);

afterAll(async () => {
  await dom?.destroy();
});

describe('block jobs end by libvirt events', () => {
  it('a slowed block pull is seen to complete with no poll after the first look; progress is reported', async () => {
    const seen: Progress[] = [];
    const watch = watchBlockJob(DOMAIN, 'vda', 'Block Pull', opts);
    try {
      await virsh(['blockpull', DOMAIN, 'vda', '--bandwidth', '2'], opts);
      const how = await watch.ended({
        timeoutMs: 60_000,
        pollMs: NEVER_MS,
        progress: { report: (p) => seen.push({ ...p }), phase: 'block-pull', total: SIZE },
      });
      expect(how).toBe('completed');
    } finally {
      watch.close();
    }
    expect(seen[0]).toEqual({ done: 0, total: SIZE, phase: 'block-pull' });
    expect(seen.at(-1)).toEqual({ done: SIZE, total: SIZE });
    // The pull took the lower layer's data up: the disk stands alone now.
    const info = JSON.parse(
      (await qemuImg('info', '-U', '-f', 'qcow2', '--output=json', top)).stdout,
    ) as Record<string, unknown>;
    expect(info['backing-filename']).toBeUndefined();
  }, 90_000);

  it('a slowed block copy is finished when libvirt says it is ready: the copy is whole, the disk unchanged', async () => {
    const dest = join(base, 'copy.qcow2');
    const watch = watchBlockJob(DOMAIN, 'vda', 'Block Copy', opts);
    try {
      await startCopy(dest, 8);
      expect(await watch.ended({ whenReady: 'finish', timeoutMs: 60_000, pollMs: NEVER_MS })).toBe(
        'completed',
      );
    } finally {
      watch.close();
    }
    expect(await diskSource(DOMAIN, 'vda')).toBe(top);
    await dom.flush('vda');
    await runTool('qemu-img', ['compare', '-U', '-f', 'qcow2', '-F', 'qcow2', top, dest]);
  }, 90_000);

  it('a cancelled wait aborts the job and leaves the disk free', async () => {
    const ac = new AbortController();
    const dest = join(base, 'cancelled.qcow2');
    const watch = watchBlockJob(DOMAIN, 'vda', 'Block Copy', { ...opts, signal: ac.signal });
    try {
      await startCopy(dest, 1);
      const waiting = watch.ended({ whenReady: 'finish', timeoutMs: 60_000, pollMs: NEVER_MS });
      ac.abort();
      await expect(waiting).rejects.toThrow(
        `block job test: the block job on vda of ${DOMAIN} was cancelled`,
      );
    } finally {
      watch.close();
    }
    expect((await virsh(['blockjob', DOMAIN, 'vda', '--raw'], opts)).includes('type=')).toBe(false);
  }, 90_000);
});
