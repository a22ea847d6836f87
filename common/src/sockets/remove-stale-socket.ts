// A daemon that died leaves its socket file behind, and listen() then fails with EADDRINUSE.
// Remove the file, but only when it is a socket nobody answers on: a regular file at that path is a
// configuration mistake to report, and a live socket belongs to a daemon that is still running.
import { lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';

/** Remove `socketPath` if it is a dead socket; throw if it is anything else that is in the way. */
export async function removeStaleSocket(
  socketPath: string,
  owner = 'one-storage-coordinator',
): Promise<void> {
  const stats = await lstat(socketPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (stats === undefined) return;
  if (!stats.isSocket()) {
    throw new Error(`${socketPath} exists and is not a socket: refusing to replace it`);
  }
  if (await isAnswering(socketPath)) {
    throw new Error(`${socketPath} is in use: is another ${owner} running?`);
  }
  await unlink(socketPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

function isAnswering(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect({ path: socketPath });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    // ECONNREFUSED is the stale case; any other failure also means nobody will answer there.
    probe.once('error', () => resolve(false));
  });
}
