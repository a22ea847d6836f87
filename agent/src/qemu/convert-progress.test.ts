import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { MIB } from '../../../common/src/units.js';
import type { Progress } from '../jobs/job-registry.js';
import { ConvertProgress, percentagesOf } from './convert-progress.js';
import { convert } from './qemu-img.js';

/**
 * Captured from `qemu-img convert -p -U -f qcow2 -O raw` (qemu-img 7.2, Debian 12) of a 64 MiB
 * image with 40 MiB written, stdout not a terminal: figures every 5 %, each ended by "\r", the
 * last one twice.
 */
const CAPTURED = [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100, 100]
  .map((n) => `    (${n.toFixed(2)}/100%)\r`)
  .join('');

function recorder(): { seen: Progress[]; report: (p: Progress) => void } {
  const seen: Progress[] = [];
  return { seen, report: (p) => seen.push({ ...p }) };
}

describe('ConvertProgress (qemu-img -p output)', () => {
  it('reads every figure of a captured output, in order', () => {
    expect(percentagesOf(CAPTURED)).toEqual([
      0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100, 100,
    ]);
  });

  it('reports fraction × total for each new figure, even one cut across chunks', () => {
    const { seen, report } = recorder();
    const p = new ConvertProgress(report, 2000, 'converting');
    for (const ch of CAPTURED) p.push(Buffer.from(ch));
    expect(seen[0]).toEqual({ done: 0, total: 2000, phase: 'converting' });
    // The repeated 100 % reports nothing new.
    expect(seen.slice(1).map((s) => s.done)).toEqual(Array.from({ length: 21 }, (_, i) => i * 100));
  });

  it.each([3, 7, 64, 4096])('reports the last figure of each %i-byte chunk', (size) => {
    const { seen, report } = recorder();
    const p = new ConvertProgress(report, 2000, 'converting');
    for (let i = 0; i < CAPTURED.length; i += size) p.push(Buffer.from(CAPTURED.slice(i, i + size)));
    const dones = seen.slice(1).map((s) => s.done);
    expect(dones).toEqual([...dones].sort((a, b) => a - b));
    expect(dones.every((d) => d % 100 === 0)).toBe(true);
    expect(dones.at(-1)).toBe(2000);
  });

  it('reports the total when the tool succeeds, and ignores anything that is not a figure', () => {
    const { seen, report } = recorder();
    const p = new ConvertProgress(report, 10, 'flattening');
    p.push('qemu-img: warning: something\r(12.5/100%)');
    expect(seen.at(-1)).toEqual({ done: 1, total: 10 });
    p.finish();
    expect(seen.at(-1)).toEqual({ done: 10, total: 10 });
  });
});

describe('convert with progress (real qemu-img)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'convert-progress-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports figures that rise to the virtual size', async () => {
    const source = join(dir, 'source.qcow2');
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', source, '32M']);
    await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 24M', source]);
    const { seen, report } = recorder();
    await convert(source, join(dir, 'copy.raw'), {
      sourceFormat: 'qcow2',
      format: 'raw',
      sparse: true,
      progress: report,
    });
    expect(seen[0]).toEqual({ done: 0, total: 32 * MIB, phase: 'converting' });
    expect(seen.length).toBeGreaterThan(3);
    const dones = seen.map((s) => s.done);
    expect(dones).toEqual([...dones].sort((a, b) => a - b));
    expect(dones.some((d) => d > 0 && d < 32 * MIB)).toBe(true);
    expect(seen.at(-1)).toEqual({ done: 32 * MIB, total: 32 * MIB });
  });
});
