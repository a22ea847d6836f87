// What the fake oned does for the calls that change an object it handed out (docs/demo.md): delete
// and chown of allocated images and templates, and the user pool a chown's user comes from. The
// state lives in files beside the allocations, so a test reads what "oned" holds:
//   allocated/<kind>-<id>.tpl      the template as allocated
//   allocated/<kind>-<id>.owner    `UID=<uid> GID=<gid>` after a chown (absent: oneadmin's)
//   allocated/<kind>-<id>.deleted  the template of a deleted object (ids are never reused)
//   user/<id>.xml                  the users, as one.user.info writes them
import { mkdir, readdir, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../../common/src/files/atomic-file.js';
import { el, textAttrs } from './xml-text.js';

export type ObjectKind = 'image' | 'template';

/** What a failed call answers: the gRPC status name and oned's message. */
export class OnedRefusal extends Error {
  constructor(
    readonly code: 'NOT_FOUND' | 'INVALID_ARGUMENT' | 'FAILED_PRECONDITION',
    message: string,
  ) {
    super(message);
  }
}

const NOUN: Record<ObjectKind, string> = { image: 'image', template: 'template' };

/** Deletes an allocated object: its template moves to `.deleted`, its owner file goes. */
export async function deleteObject(dir: string, kind: ObjectKind, id: number, method: string): Promise<void> {
  const tpl = join(dir, 'allocated', `${kind}-${id}.tpl`);
  if (!(await exists(tpl))) {
    throw new OnedRefusal('NOT_FOUND', `[${method}] Error getting ${NOUN[kind]} [${id}].`);
  }
  await rename(tpl, join(dir, 'allocated', `${kind}-${id}.deleted`));
}

/** Records a chown of an allocated object; -1 keeps the current user or group, as oned does. */
export async function chownObject(
  dir: string,
  kind: ObjectKind,
  id: number,
  uid: number,
  gid: number,
  method: string,
): Promise<void> {
  if (!(await exists(join(dir, 'allocated', `${kind}-${id}.tpl`)))) {
    throw new OnedRefusal('NOT_FOUND', `[${method}] Error getting ${NOUN[kind]} [${id}].`);
  }
  if (uid < -1 || gid < -1)
    throw new OnedRefusal('INVALID_ARGUMENT', `[${method}] Invalid user or group id.`);
  if (uid >= 0 && !(await exists(join(dir, 'user', `${uid}.xml`)))) {
    throw new OnedRefusal('NOT_FOUND', `[${method}] Error getting user [${uid}].`);
  }
  const ownerFile = join(dir, 'allocated', `${kind}-${id}.owner`);
  const before = await readOwner(ownerFile);
  const owner = { uid: uid === -1 ? before.uid : uid, gid: gid === -1 ? before.gid : gid };
  await writeFileAtomic(ownerFile, `UID=${owner.uid} GID=${owner.gid}\n`);
}

/** The <USER_POOL> document: every user/<id>.xml fixture, by id. */
export async function userPoolXml(dir: string): Promise<string> {
  const folder = join(dir, 'user');
  const files = await readdir(folder).catch(() => [] as string[]);
  const ids = files
    .flatMap((f) => /^(\d+)\.xml$/.exec(f)?.[1] ?? [])
    .map(Number)
    .sort((a, b) => a - b);
  const users = await Promise.all(ids.map((id) => readFile(join(folder, `${id}.xml`), 'utf8')));
  return el('USER_POOL', users.map((u) => u.trim()).join(''));
}

/** A <USER> document as one.user.info writes it (the fields the drivers read). */
export function userXml(user: { id: number; name: string; gid?: number; gname?: string }): string {
  const gid = user.gid ?? 1;
  return el(
    'USER',
    textAttrs({ ID: user.id, GID: gid }) +
      el('GROUPS', el('ID', String(gid))) +
      textAttrs({ GNAME: user.gname ?? (gid === 0 ? 'oneadmin' : 'users'), NAME: user.name }) +
      textAttrs({ PASSWORD: '', AUTH_DRIVER: 'core', ENABLED: 1 }),
  );
}

/** Writes user/<id>.xml. */
export async function writeUserXml(
  dir: string,
  user: { id: number; name: string; gid?: number },
): Promise<void> {
  await mkdir(join(dir, 'user'), { recursive: true });
  await writeFileAtomic(join(dir, 'user', `${user.id}.xml`), userXml(user));
}

async function readOwner(file: string): Promise<{ uid: number; gid: number }> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const m = /^UID=(-?\d+) GID=(-?\d+)/.exec(text);
  return m ? { uid: Number(m[1]), gid: Number(m[2]) } : { uid: 0, gid: 0 };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
