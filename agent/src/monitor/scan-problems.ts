import { oneLine } from '../../../common/src/errors.js';

/** Why a scan could not read something, as one line of its problems. */
export function gone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export function why(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file (a dangling symlink?)';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return oneLine(e.message ?? String(err));
  }
}
