import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { sha256File } from '../files.js';

/**
 * Everything an image snapshot call may touch, as one comparable value: SOURCE, `<SOURCE>.md5sum`
 * and every entry of `<SOURCE>.snap` (a symlink by its text, a file by its SHA-256), plus any
 * temporary beside SOURCE. Equal before and after a refused call: nothing changed.
 */
export async function treeState(source: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const name = basename(source);
  const dir = dirname(source);
  const entries = readdirSync(dir)
    .filter((n) => n === name || n.startsWith(`${name}.`) || n.startsWith(`.${name}`))
    .map((n) => join(dir, n));
  const snap = `${source}.snap`;
  if (lstatSync(snap, { throwIfNoEntry: false })?.isDirectory()) {
    entries.push(...readdirSync(snap).map((n) => join(snap, n)));
  }
  for (const path of entries.sort()) {
    const st = lstatSync(path);
    const key = path.slice(dir.length + 1);
    if (st.isSymbolicLink()) out[key] = `-> ${readlinkSync(path)}`;
    else if (st.isFile()) out[key] = await sha256File(path);
    else out[key] = 'dir';
  }
  return out;
}
