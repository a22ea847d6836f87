// The shim socket exists under its published name only once its group and mode are set: it is bound
// under a temporary name beside it, chown'ed and chmod'ed, then renamed into place (as every file
// is written, common/src/files/atomic-file.ts). A shim, or anyone else, can never connect while the
// socket still has the umask's mode or root's group.
import { chmod, chown, lstat, unlink } from 'node:fs/promises';
import type { Server } from 'node:net';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';

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
  await writeAtomically(socketPath, async (temp) => {
    await listen(server, temp);
    if (access.group !== undefined) await chown(temp, KEEP_OWNER, access.group);
    await chmod(temp, access.mode);
  });
  const inode = (await lstat(socketPath)).ino;
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
