import type { Progress } from '../jobs/job-registry.js';
import { ConvertProgress } from '../qemu/convert-progress.js';
import type { VirshOptions } from './virsh.js';

/**
 * One figure of `virsh blockcopy|blockpull|blockcommit --wait --verbose`: "\rBlock Copy: [ 43 %]"
 * ("Block Pull", "Block Commit"), written to stderr even with -q (libvirt 9, Debian 12).
 */
export const VIRSH_JOB_FIGURE = /\[\s*(\d{1,3}) %\]/g;
/** A whole figure with its label, as an error message leaves it out. */
const VIRSH_JOB_FIGURE_LINE = /\r?Block (Copy|Pull|Commit): \[\s*\d{1,3} %\]/g;

/** Where a block job's progress goes: its phase and the bytes the whole job stands for. */
export interface BlockJobProgress {
  readonly report: (p: Progress) => void;
  readonly phase: string;
  /** The disk's virtual size: virsh prints only a percentage of the job's work. */
  readonly total: number;
}

/**
 * What a `virsh ... --wait` block job needs to report its progress through the wait it already
 * does (no second poller): `--verbose`, a stderr reader, and `finish` once virsh succeeded.
 * Nothing at all without `progress`.
 */
export function blockJobProgress(progress: BlockJobProgress | undefined): {
  args: string[];
  options: Pick<VirshOptions, 'onStderr' | 'stderrNoise'>;
  finish: () => void;
} {
  if (!progress) return { args: [], options: {}, finish: () => undefined };
  const figures = new ConvertProgress(progress.report, progress.total, progress.phase, VIRSH_JOB_FIGURE);
  return {
    args: ['--verbose'],
    options: { onStderr: (chunk) => figures.push(chunk), stderrNoise: VIRSH_JOB_FIGURE_LINE },
    finish: () => figures.finish(),
  };
}
