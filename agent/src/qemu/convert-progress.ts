import type { Progress } from '../jobs/job-registry.js';

/** One progress figure of `qemu-img convert -p`: "    (42.00/100%)", each ended by "\r". */
export const QEMU_IMG_FIGURE = /\((\d{1,3}(?:\.\d+)?)\/100%\)/g;

/**
 * Reads the progress `qemu-img convert -p` writes to stdout, as it comes, in chunks that may split
 * a figure anywhere: "    (0.00/100%)\r    (5.00/100%)\r...". Another tool's percentages are read
 * the same way given their pattern (`figure`, global, the percentage its first group).
 * Each new figure reports `fraction × total` bytes done. Only the tail after the last complete
 * figure is kept, so memory stays small whatever the tool prints.
 */
export class ConvertProgress {
  private tail = '';
  private last = -1;

  constructor(
    private readonly report: (p: Progress) => void,
    /** Bytes the whole job stands for (the image's virtual size, or what the caller knows). */
    private readonly total: number,
    private readonly phase: string,
    private readonly figure: RegExp = QEMU_IMG_FIGURE,
  ) {
    report({ done: 0, total, phase });
  }

  /** Feeds a chunk of stdout. */
  push(chunk: Buffer | string): void {
    const text = this.tail + chunk.toString();
    let percent = -1;
    let end = 0;
    for (const m of text.matchAll(this.figure)) {
      percent = Number(m[1]);
      end = (m.index ?? 0) + m[0].length;
    }
    // A figure may be cut at the end of the chunk: keep what follows the last whole one (bounded).
    this.tail = text.slice(end).slice(-32);
    if (percent < 0 || percent === this.last) return;
    this.last = percent;
    this.report({ done: Math.round((Math.min(percent, 100) / 100) * this.total), total: this.total });
  }

  /** The tool succeeded: all of it is done, whatever its last figure said. */
  finish(): void {
    this.report({ done: this.total, total: this.total });
  }
}

/** The percentages a captured `-p` output holds, in order (for tests and diagnostics). */
export function percentagesOf(output: string): number[] {
  return [...output.matchAll(QEMU_IMG_FIGURE)].map((m) => Number(m[1]));
}
