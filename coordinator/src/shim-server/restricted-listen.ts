// The shim socket exists under its published name only once its group and mode are set: it is bound
// under a temporary name beside it, chown'ed and chmod'ed, then renamed into place. A shim, or anyone
// else, can never connect while the socket still has the umask's mode or root's group.
import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, rename, unlink } from 'node:fs/promises';
import type { Server } from 'node:net';
import { basename, dirname, join } from 'node:path';

/** fs.chown's "leave the owner as it is". */
const KEEP_OWNER = -1;

export interface SocketAccess {
  /** Permission bits, e.g. 0660. */
  mode: number;
  /** Group to own the socket (its members may connect); undefined keeps the process's group. */
  group: number | undefined;
}

/** What restrictedListen bound: remove() unlinks the socket file if it is still the one bound. */
export interface BoundSocket {
  remove(): Promise<void>;
}

export async function restrictedListen(
  server: Server,
  socketPath: string,
  access: SocketAccess,
): Promise<BoundSocket> {
  const temp = join(dirname(socketPath), `.${basename(socketPath)}.${randomBytes(6).toString('hex')}`);
  await listen(server, temp);
  let inode: number;
  try {
    if (access.group !== undefined) await chown(temp, KEEP_OWNER, access.group);
    await chmod(temp, access.mode);
    await rename(temp, socketPath);
    inode = (await lstat(socketPath)).ino;
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
  return {
    async remove() {
      // Another coordinator may have replaced the file since (after this one was declared stale).
      const st = await lstat(socketPath).catch(() => undefined);
      if (st?.ino === inode) await unlink(socketPath).catch(() => {});
    },
  };
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
