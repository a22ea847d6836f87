import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../test/support/manual-clock.js';
import { Progress } from './progress.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _e, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    }),
  );
  return { lines, log };
}

describe('Progress', () => {
  it('logs each tenth of a known total, with rate and ETA, then one closing line', () => {
    const { lines, log } = capture();
    const clock = new ManualClock();
    const p = new Progress(log, { source: 'http://x/y' }, clock);
    p.expect(1000);
    for (let i = 0; i < 100; i++) {
      clock.advance(10);
      p.add(10);
    }
    p.done();
    const progress = lines.filter((l) => l['msg'] === 'import progress');
    expect(progress.map((l) => l['percent'])).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    expect(progress[0]).toMatchObject({
      source: 'http://x/y',
      bytes: 100,
      total: 1000,
      bytesPerSecond: 1000,
      etaSeconds: 1,
    });
    expect(lines.at(-1)).toMatchObject({ msg: 'import fetched', bytes: 1000, ms: 1000 });
  });

  it('logs every 5 s when the total is unknown', () => {
    const { lines, log } = capture();
    const clock = new ManualClock();
    const p = new Progress(log, {}, clock);
    for (let i = 0; i < 20; i++) {
      clock.advance(1000);
      p.add(1);
    }
    const progress = lines.filter((l) => l['msg'] === 'import progress');
    expect(progress.map((l) => l['bytes'])).toEqual([5, 10, 15, 20]);
    expect(progress[0]).not.toHaveProperty('etaSeconds');
  });
});
