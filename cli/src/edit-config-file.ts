// `one-storage oned-conf --apply FILE` / `--remove FILE` and `one-storage vmm-execrc ...`: an edit
// of a front-end config file, written atomically with the file's own mode and owner (oned.conf and
// vmm_execrc are root:oneadmin 0640 on a stock front-end: oned and its drivers must keep reading them).
import { chmod, chown, readFile, stat, writeFile } from 'node:fs/promises';
import { writeAtomically } from '../../common/src/files/atomic-file.js';

const PERMISSION_BITS = 0o7777;

/** Edits `file` with `edit` (unless `check`) and says whether it changed (or would). */
export async function editConfigFile(
  file: string,
  edit: (text: string) => string,
  check: boolean,
): Promise<boolean> {
  const text = await readFile(file, 'utf8');
  const next = edit(text);
  if (next === text) return false;
  if (check) return true;
  const st = await stat(file);
  await writeAtomically(file, async (temp) => {
    await writeFile(temp, next, { flag: 'wx', mode: st.mode & PERMISSION_BITS });
    await chmod(temp, st.mode & PERMISSION_BITS);
    await chown(temp, st.uid, st.gid);
  });
  return true;
}
