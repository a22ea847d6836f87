import { expect } from 'vitest';
import { MIB } from '../../cli/src/demo/demo-images.js';
import type { ActionRun } from '../../cli/src/demo/run-action.js';
import { runTool } from '../../common/src/tools/run-tool.js';
import { humanLines } from './files.js';

/** A TM action that succeeded as oned sees it: exit 0, nothing on stdout, only log lines on stderr. */
export function expectOk(r: ActionRun): void {
  expect(humanLines(r.stderr), r.command).toEqual([]);
  expect(r.code, `${r.command}\n${r.stderr}`).toBe(0);
  expect(r.stdout).toBe('');
}

/** A failure as oned sees it: non-zero exit, exactly one human line, which must match `pattern`. */
export function expectOneLineFailure(r: ActionRun, pattern: RegExp): void {
  expect(r.code, r.command).not.toBe(0);
  const lines = humanLines(r.stderr);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.stdout).toBe('');
}

/** Whether the guest-visible bytes [offset, offset + 1 MiB) of an image all equal `pattern` (qemu-io). */
export async function holdsPattern(
  file: string,
  pattern: number,
  offset = 0,
  format: 'raw' | 'qcow2' = 'qcow2',
): Promise<boolean> {
  const r = await runTool('qemu-io', [
    '-r',
    '-U',
    '-f',
    format,
    '-c',
    `read -P 0x${pattern.toString(16)} ${offset} ${MIB}`,
    file,
  ]);
  return !/Pattern verification failed/.test(r.stdout);
}
