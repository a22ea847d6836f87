// `one-storage oned-conf --apply FILE` / `--remove FILE`: the edit of edit-oned-conf.ts on a file,
// written atomically with the file's own mode and owner (oned.conf is root:oneadmin 0640 on a
// stock front-end: oned must keep reading it).
import { chmod, chown, readFile, stat, writeFile } from 'node:fs/promises';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import { editOnedConf, type OnedConfEdit } from './edit-oned-conf.js';

const PERMISSION_BITS = 0o7777;

/** Edits `file` (unless `check`) and says whether it changed (or would). */
export async function editOnedConfFile(file: string, edit: OnedConfEdit, check: boolean): Promise<boolean> {
  const text = await readFile(file, 'utf8');
  const next = editOnedConf(text, edit, file);
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
