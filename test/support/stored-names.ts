import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { runTool } from '../../common/src/tools/run-tool.js';

/** The first four bytes of every qcow2 file ("QFI\xfb"). */
const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

/**
 * Bind-mounts `real` on each of `mountPoints` (created if missing): one directory that several
 * hosts see under different local paths, as hosts mapping DATASTORE_LOCATION differently do.
 * Returns an unmount function that undoes what was done (for afterAll). Needs root.
 */
export async function bindMounts(real: string, mountPoints: readonly string[]): Promise<() => Promise<void>> {
  const mounted: string[] = [];
  const unmount = async (): Promise<void> => {
    for (const m of mounted.reverse()) await runTool('umount', [m]).catch(() => undefined);
  };
  try {
    for (const m of mountPoints) {
      await mkdir(m, { recursive: true });
      await runTool('mount', ['--bind', real, m]);
      mounted.push(m);
    }
  } catch (err) {
    await unmount();
    throw err;
  }
  return unmount;
}

/** A name written into metadata: where it was found and what it says. */
export interface StoredName {
  /** "symlink" or "backing". */
  kind: string;
  /** The file holding it, relative to the scanned directory. */
  file: string;
  name: string;
}

/**
 * Every name written into metadata under `dir`: each symlink's text, and the stored backing name
 * (`backing-filename` of `qemu-img info -f qcow2`, one layer, never following the chain) of each
 * qcow2 file.
 */
export async function storedNames(dir: string): Promise<StoredName[]> {
  const out: StoredName[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of readdirSync(d).sort()) {
      const p = join(d, entry);
      const file = p.slice(dir.length + 1);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.push({ kind: 'symlink', file, name: readlinkSync(p) });
      else if (st.isDirectory()) await walk(p);
      else if (st.isFile() && (await isQcow2(p))) {
        const r = await runTool('qemu-img', ['info', '-U', '-f', 'qcow2', '--output=json', p]);
        const backing = (JSON.parse(r.stdout) as Record<string, unknown>)['backing-filename'];
        if (typeof backing === 'string') out.push({ kind: 'backing', file, name: backing });
      }
    }
  };
  await walk(dir);
  return out;
}

/**
 * The names that break when hosts map the datastore location to different directories: absolute
 * ones outside `location` (an agent's local root, or anything else).
 */
export function foreignNames(names: readonly StoredName[], location: string): string[] {
  return names
    .filter((n) => isAbsolute(n.name) && !n.name.startsWith(`${location}/`))
    .map((n) => `${n.kind} ${n.file}: ${n.name}`);
}

async function isQcow2(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(QCOW2_MAGIC.length);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return bytesRead === buf.length && buf.equals(QCOW2_MAGIC);
  } finally {
    await fh.close();
  }
}
