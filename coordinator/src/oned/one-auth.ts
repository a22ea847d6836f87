import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';

/** Where oned's CLI tools look when $ONE_AUTH is unset, relative to the user's home. */
const DEFAULT_ONE_AUTH = join('.one', 'one_auth');

/**
 * The ONE_AUTH file to read: $ONE_AUTH when set, else ~/.one/one_auth, as OpenNebula's tools do.
 * Takes the environment as an argument because config is read once at startup, not from process.env.
 */
export function oneAuthPath(env: Readonly<Record<string, string | undefined>>, homeDir: string): string {
  const fromEnv = env['ONE_AUTH'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homeDir, DEFAULT_ONE_AUTH);
}

/**
 * Reads the oned session string (`user:password`, the first line, trimmed) from a ONE_AUTH file.
 * The content is a secret: no error message here quotes any of it. Every failure is CONFIG_INVALID
 * (a daemon that cannot read it exits 2).
 */
export async function readOneAuth(file: string): Promise<string> {
  let content: string;
  try {
    content = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new StorageError('CONFIG_INVALID', `ONE_AUTH file ${file} is missing`, { cause: err });
    throw new StorageError(
      'CONFIG_INVALID',
      `ONE_AUTH file ${file} is unreadable (${code ?? 'unknown error'})`,
      {
        cause: err,
      },
    );
  }
  const session = (content.split('\n', 1)[0] ?? '').trim();
  const colon = session.indexOf(':');
  // oned splits at the first colon: the user name cannot hold one, the password (or token) can.
  if (colon <= 0 || colon === session.length - 1) {
    throw new StorageError(
      'CONFIG_INVALID',
      `ONE_AUTH file ${file} is malformed: its first line must be user:password`,
    );
  }
  return session;
}
