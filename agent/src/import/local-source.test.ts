import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { openLocalImport, resolveLocalImport } from './local-source.js';

// base/uploads is the agent's import directory; inside it tmp/ is a safe dir, secret/ restricted.
const base = realpathSync(mkdtempSync(join(tmpdir(), 'local-source-')));
const uploads = join(base, 'uploads');
for (const d of ['tmp', 'tmpfoo', 'secret', 'secret/open', 'plain'])
  mkdirSync(join(uploads, d), { recursive: true });
for (const f of ['tmp/a.img', 'tmpfoo/b.img', 'secret/c.img', 'secret/open/d.img', 'plain/e.img'])
  writeFileSync(join(uploads, f), 'image');
writeFileSync(join(base, 'outside.img'), 'image');
symlinkSync(join(uploads, 'secret/c.img'), join(uploads, 'tmpfoo/link-to-secret'));
symlinkSync(join(base, 'outside.img'), join(uploads, 'plain/link-out'));
symlinkSync(join(uploads, 'tmp'), join(base, 'tmp-alias'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const rules = (path: string, safeDirs: string[] = [], restrictedDirs: string[] = []) => ({
  path,
  safeDirs,
  restrictedDirs,
});
const resolve = (path: string, safe: string[] = [], restricted: string[] = []) =>
  resolveLocalImport(rules(path, safe, restricted), [uploads], 'cp image 7');

async function refusal(p: Promise<unknown>): Promise<StorageError> {
  const err = await p.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

describe('resolveLocalImport', () => {
  const u = (rel: string): string => join(uploads, rel);

  it('allows a file under the import directories when no rule names it', async () => {
    expect(await resolve(u('plain/e.img'), [], [u('secret')])).toBe(u('plain/e.img'));
  });

  it('refuses a file under a restricted dir, naming the resolved path and the dir', async () => {
    const err = await refusal(resolve(u('secret/c.img'), [], [`${u('secret')}/`]));
    expect(err.reason).toBe('PATH_RESTRICTED');
    expect(err.message).toContain(u('secret/c.img'));
    expect(err.message).toContain(`under ${u('secret')}/ (RESTRICTED_DIRS)`);
  });

  it('a safe dir wins over a restricted one that holds it', async () => {
    expect(await resolve(u('secret/open/d.img'), [u('secret/open')], [u('secret')])).toBe(
      u('secret/open/d.img'),
    );
  });

  it('goes by directory boundaries: /x/tmp covers neither /x/tmpfoo nor lets it in', async () => {
    // Restricted "tmp" does not catch tmpfoo...
    expect(await resolve(u('tmpfoo/b.img'), [], [u('tmp')])).toBe(u('tmpfoo/b.img'));
    // ...and safe "tmp" does not open tmpfoo under a restricted "/" (OpenNebula's default).
    const err = await refusal(resolve(u('tmpfoo/b.img'), [u('tmp')], ['/']));
    expect(err.reason).toBe('PATH_RESTRICTED');
    expect(await resolve(u('tmp/a.img'), [u('tmp')], ['/'])).toBe(u('tmp/a.img'));
  });

  it('follows symlinks first: a link into a restricted dir is refused on its target', async () => {
    const err = await refusal(resolve(u('tmpfoo/link-to-secret'), [], [u('secret')]));
    expect(err.reason).toBe('PATH_RESTRICTED');
    expect(err.message).toContain(`resolves to ${u('secret/c.img')}`);
  });

  it('refuses what resolves outside the import directories, whatever the rules say', async () => {
    for (const path of [u('plain/link-out'), join(base, 'outside.img')]) {
      const err = await refusal(resolve(path, ['/'], []));
      expect(err.reason).toBe('PATH_RESTRICTED');
      expect(err.message).toMatch(/outside this agent's import directories/);
    }
  });

  it('counts a rule dir as it resolves (a symlinked safe dir)', async () => {
    expect(await resolve(u('tmp/a.img'), [join(base, 'tmp-alias')], ['/'])).toBe(u('tmp/a.img'));
  });

  it.each([
    ['a relative path', 'tmp/a.img', 'INVALID_ARGUMENT', /local.path must be an absolute path/],
    ['a missing file', '/nonexistent/x.img', 'NOT_FOUND', /does not exist/],
  ])('%s is %s', async (_t, path, reason, message) => {
    const err = await refusal(resolve(path));
    expect(err.reason).toBe(reason);
    expect(err.message).toMatch(message);
  });

  it('a relative rule dir is INVALID_ARGUMENT naming the field', async () => {
    const err = await refusal(resolve(u('tmp/a.img'), ['var/tmp']));
    expect(err).toMatchObject({
      reason: 'INVALID_ARGUMENT',
      message: expect.stringContaining('local.safe_dirs[0]') as unknown,
    });
  });
});

describe('openLocalImport', () => {
  it('opens the regular file the checks resolved', async () => {
    const { fh, size } = await openLocalImport(join(uploads, 'tmp/a.img'), 'cp image 7');
    await fh.close();
    expect(size).toBe(5);
  });

  it('refuses a directory, and a path that became a symlink', async () => {
    expect((await refusal(openLocalImport(join(uploads, 'tmp'), 'cp'))).reason).toBe('INVALID_ARGUMENT');
    expect((await refusal(openLocalImport(join(uploads, 'plain/link-out'), 'cp'))).reason).toBe(
      'PATH_RESTRICTED',
    );
  });
});
