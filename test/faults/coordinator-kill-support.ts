// What the coordinator-kill fault suite needs beside the stack: when to kill (a journal step begun;
// an agent's job at a given fraction is support/receive-progress.ts's jobAtLeast), and the checks of
// what a run left behind.
import Database from 'better-sqlite3';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Stack } from '../../cli/src/demo/stack.js';
import { sha256File } from '../support/files.js';

const WAIT_MS = 30_000;

/** Waits until the coordinator's journal shows a running call with a step `rpc` begun. */
export async function stepBegun(stack: Stack, rpc: string): Promise<void> {
  const db = new Database(stack.journalPath, { readonly: true, fileMustExist: true });
  try {
    const query = db.prepare(
      `SELECT 1 FROM steps JOIN calls USING (request_id) WHERE calls.outcome = 'running' AND steps.rpc = ?`,
    );
    const deadline = Date.now() + WAIT_MS;
    while (query.get(rpc) === undefined) {
      if (Date.now() > deadline) throw new Error(`no running call began a ${rpc} step within ${WAIT_MS} ms`);
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    db.close();
  }
}

/** Every file under `dir` (relative names), or [] when it does not exist. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

/** The sha256 of every file under `dir`, by relative name. */
export async function sums(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of filesUnder(dir)) out[f] = await sha256File(join(dir, f));
  return out;
}
