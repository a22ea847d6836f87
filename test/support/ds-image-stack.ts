import { closeSync, openSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { runAction, type ActionRun } from '../../cli/src/demo/run-action.js';
import type { Stack } from '../../cli/src/demo/stack.js';
import { humanLines } from './files.js';

/** The image datastore driver's name, as installed under remotes/datastore/. */
export const DS_DRIVER = 'grpc';

/** Runs `remotes/datastore/grpc/<action> <id>` with base64 DS_DRIVER_ACTION_DATA on stdin, as one_datastore.rb does. */
export function dsAction(
  stack: Stack,
  action: string,
  id: number | string,
  stdin: string,
): Promise<ActionRun> {
  return runAction(stack.remotesDir, 'datastore', DS_DRIVER, action, [String(id)], stdin);
}

/** A success as oned reads it: exit 0, only log lines on stderr; returns stdout. */
export function expectSuccess(r: ActionRun): string {
  expect(humanLines(r.stderr), `${r.command}\n${r.stderr}`).toEqual([]);
  expect(r.code, `${r.command}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

/** A failure as oned reads it: exit 1, empty stdout, one human line on stderr matching `pattern`. */
export function expectFailure(r: ActionRun, pattern: RegExp): string {
  expect(r.code, `${r.command}\n${r.stdout}${r.stderr}`).toBe(1);
  expect(r.stdout).toBe('');
  const lines = humanLines(r.stderr);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  return lines[0] as string;
}

/** The INFO lines the action logged (oned copies them into its log). */
export function infoLines(r: ActionRun): string[] {
  return r.stderr
    .split('\n')
    .filter((l) => l.startsWith('INFO: '))
    .map((l) => l.slice('INFO: '.length));
}

/**
 * Checks that `source` is `<base>/<md5 hex of "<seconds>:<id>\n">` for a second between `fromMs`
 * and `toMs` (the action ran in between), as fs names images.
 */
export function expectSourceName(
  source: string,
  base: string,
  id: number,
  fromMs: number,
  toMs: number,
): void {
  const names: string[] = [];
  for (let s = Math.floor(fromMs / 1000); s <= Math.floor(toMs / 1000); s++) {
    names.push(`${base}/${createHash('md5').update(`${s}:${id}\n`).digest('hex')}`);
  }
  expect(names).toContain(source);
}

/** qcow2's magic, `QFI\xfb`: the first four bytes of every qcow2 image. */
const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

/**
 * The format a stored image has, read from its first bytes (not from qemu-img, which is given the
 * format everywhere else): what a test checks against the format an action printed.
 */
export function storedFormat(file: string): 'raw' | 'qcow2' {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(QCOW2_MAGIC.length);
    readSync(fd, head, 0, head.length, 0);
    return head.equals(QCOW2_MAGIC) ? 'qcow2' : 'raw';
  } finally {
    closeSync(fd);
  }
}
