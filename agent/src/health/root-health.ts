import { constants } from 'node:fs';
import { access, realpath, stat, statfs } from 'node:fs/promises';
import { oneLine } from '../../../common/src/errors.js';
import type { DatastoreHealth } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { RootConfig } from '../config.js';

/** One datastore root as this agent finds it, plus its owner for the deep check. */
export interface RootFinding extends DatastoreHealth {
  /** The owner's uid; undefined when the root is missing. */
  ownerUid?: number;
}

/**
 * A root's state as the agent's own user sees it: it exists and is a directory, the agent may write
 * into it (access(2) as this process, which runs as the agent's user), and its filesystem's total
 * and free bytes (statfs f_bavail: what an unprivileged writer can still use, as df shows).
 */
export async function rootHealth(root: RootConfig): Promise<RootFinding> {
  const base = { location: root.location, root: root.path, totalBytes: 0, freeBytes: 0 };
  let real: string;
  try {
    real = await realpath(root.path);
  } catch (err) {
    return { ...base, ok: false, detail: `${root.path} is missing (${code(err)})` };
  }
  const st = await stat(real);
  const found = { ...base, root: real, ownerUid: st.uid };
  if (!st.isDirectory()) return { ...found, ok: false, detail: `${real} is not a directory` };
  const fs = await statfs(real);
  const sized = { ...found, totalBytes: fs.blocks * fs.bsize, freeBytes: fs.bavail * fs.bsize };
  try {
    await access(real, constants.W_OK | constants.X_OK);
  } catch (err) {
    return { ...sized, ok: false, detail: `${real} is not writable by the agent's user (${code(err)})` };
  }
  return { ...sized, ok: true, detail: '' };
}

function code(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? oneLine(e instanceof Error ? e.message : String(err));
}
