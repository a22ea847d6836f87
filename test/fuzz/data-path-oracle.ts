// What the data-path fuzz checks on disk: a received tree holds exactly the data that was sent and
// nothing that leads out of it; no temporary is left; the canary is unchanged.
import { createHash } from 'node:crypto';
import { lstat, readFile, readdir, readlink, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { dataOf, type Tree } from './data-path-trees.js';
import { fingerprint } from '../support/canary.js';

export { fingerprint };

/** Names in `dir` that are temporaries or asides (hidden: `.<name>.tmp-...`, `.<name>.old-...`). */
export async function leftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('.'));
}

/**
 * A receive that succeeded: for a sound stream, the digest it reports is the one of the data
 * streams sent; for any stream, every symlink in the result resolves inside it, and a file of the
 * tree still at its path holds its content, holes as zeros (a stream that changed the manifest may
 * legitimately have moved or dropped files, never altered a byte).
 */
export async function checkReceived(
  final: string,
  tree: Tree,
  digest: string | undefined,
  what: string,
): Promise<void> {
  const perFile = tree.files.map((f) => createHash('sha256').update(dataOf(f)).digest());
  if (digest !== undefined)
    expect(digest, `${what}: digest`).toBe(createHash('sha256').update(Buffer.concat(perFile)).digest('hex'));
  const top = await realpath(final);
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    if (st.isSymbolicLink()) {
      const target = await realpath(p).catch(() => undefined);
      if (target !== undefined)
        expect(target === top || target.startsWith(`${top}/`), `${what}: ${p} -> ${await readlink(p)}`).toBe(
          true,
        );
    } else if (st.isDirectory()) {
      for (const name of await readdir(p)) await walk(join(p, name));
    } else {
      expect(st.isFile(), `${what}: ${p} is not a regular file`).toBe(true);
    }
  };
  await walk(final);
  for (const f of tree.files) {
    const path = f.path === '' ? final : join(final, f.path);
    const got = await readFile(path).catch(() => undefined);
    if (!got) continue;
    const want = Buffer.alloc(f.size);
    let at = 0;
    for (const [offset, length] of f.extents) {
      dataOf(f).copy(want, offset, at, at + length);
      at += length;
    }
    expect(got.equals(want), `${what}: ${f.path || '.'} content`).toBe(true);
  }
}
