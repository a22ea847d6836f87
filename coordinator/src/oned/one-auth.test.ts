import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oneAuthPath, readOneAuth } from './one-auth.js';

const SECRET = 's3cr3t-passw0rd';

describe('readOneAuth', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'one-auth-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['a plain file', `oneadmin:${SECRET}\n`, `oneadmin:${SECRET}`],
    ['surrounding blanks and later lines', `  oneadmin:${SECRET}  \r\nignored:line\n`, `oneadmin:${SECRET}`],
    ['a password holding colons', 'serveradmin:a:b:c', 'serveradmin:a:b:c'],
    ['no final newline', `oneadmin:${SECRET}`, `oneadmin:${SECRET}`],
  ])('reads %s', async (_name, content, session) => {
    const file = join(dir, 'ok');
    await writeFile(file, content);
    await expect(readOneAuth(file)).resolves.toBe(session);
  });

  it.each([
    ['empty', ''],
    ['no colon', SECRET],
    ['no user', `:${SECRET}`],
    ['no password', 'oneadmin:'],
    ['secret on the second line', `\noneadmin:${SECRET}`],
  ])('refuses a malformed file (%s) without quoting it', async (_name, content) => {
    const file = join(dir, 'bad');
    await writeFile(file, content);
    const err = (await readOneAuth(file).catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(`ONE_AUTH file ${file} is malformed: its first line must be user:password`);
    expect(err.message).not.toContain(SECRET);
  });

  it('names a missing file', async () => {
    const file = join(dir, 'absent');
    await expect(readOneAuth(file)).rejects.toThrow(`ONE_AUTH file ${file} is missing`);
  });

  it('names an unreadable file', async () => {
    const file = join(dir, 'locked');
    await writeFile(file, `oneadmin:${SECRET}`);
    await chmod(file, 0o000);
    // root reads any file; the directory case below covers unreadability for everyone.
    if (process.getuid?.() !== 0) {
      await expect(readOneAuth(file)).rejects.toThrow(`ONE_AUTH file ${file} is unreadable (EACCES)`);
    }
    await expect(readOneAuth(dir)).rejects.toThrow(`ONE_AUTH file ${dir} is unreadable (EISDIR)`);
  });
});

describe('oneAuthPath', () => {
  it.each([
    [{ ONE_AUTH: '/etc/one/auth' }, '/etc/one/auth'],
    [{ ONE_AUTH: '' }, '/var/lib/one/.one/one_auth'],
    [{}, '/var/lib/one/.one/one_auth'],
  ])('%j gives %s', (env, path) => {
    expect(oneAuthPath(env, '/var/lib/one')).toBe(path);
  });
});
