import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, waitFor } from './command.js';

/** Where built root filesystems are kept between test files and between CI runs. */
export const ROOTFS_CACHE_DIR = '/var/cache/one-storage-fleet';
const SUITE = 'bookworm';
const MIRROR = 'http://deb.debian.org/debian';
/**
 * What a fleet node needs: systemd as PID 1 (systemd, systemd-sysv, dbus), Ansible's python3 (apt
 * module: python3-apt; become to oneadmin: acl), sshd for the controller, and the tools the agent
 * runs on a host: qemu-img/qemu-io (qemu-utils), genisoimage/isoinfo (context ISOs), mkfs
 * (e2fsprogs), openssl; iproute2 and procps to look around when a test fails.
 */
export const FLEET_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'python3',
  'python3-apt',
  'acl',
  'openssh-server',
  'qemu-utils',
  'genisoimage',
  'e2fsprogs',
  'openssl',
  'iproute2',
  'procps',
] as const;
/** Bump when prepareRootfs changes what it writes, so old caches are not reused. */
const PREPARE_VERSION = 1;
/** debootstrap takes about 40 s here; a slow mirror gets much more before another waiter gives up. */
const BUILD_TIMEOUT_MS = 15 * 60_000;
/** Timers that would run apt or scrubbing inside the nodes during a test. */
const MASKED_UNITS = ['apt-daily.timer', 'apt-daily-upgrade.timer', 'e2scrub_all.timer', 'fstrim.timer'];

/**
 * The Debian 12 root filesystem the fleet's containers boot from, built once with debootstrap and
 * kept in ROOTFS_CACHE_DIR under a name derived from its package list; containers mount it as the
 * read-only lower layer of an overlay, so it is never changed once built. A lock directory holding
 * the builder's PID keeps two test processes from building it at once; a lock whose builder is
 * gone is taken over.
 */
export async function cachedRootfs(log: (line: string) => void): Promise<string> {
  const key = createHash('sha256')
    .update(JSON.stringify({ SUITE, MIRROR, FLEET_PACKAGES, PREPARE_VERSION }))
    .digest('hex')
    .slice(0, 16);
  const root = join(ROOTFS_CACHE_DIR, `rootfs-${key}`);
  if (existsSync(join(root, '.complete'))) return root;
  await mkdir(ROOTFS_CACHE_DIR, { recursive: true });
  const lock = `${root}.lock`;
  await waitFor(
    `the lock ${lock} on the root filesystem build`,
    () => takeLock(lock),
    BUILD_TIMEOUT_MS,
    1_000,
  );
  try {
    if (existsSync(join(root, '.complete'))) return root;
    const building = `${root}.building`;
    await rm(building, { recursive: true, force: true });
    await rm(root, { recursive: true, force: true });
    const started = Date.now();
    log(`building the fleet root filesystem ${root} with debootstrap (cached afterwards)`);
    await run(
      'debootstrap',
      ['--variant=minbase', `--include=${FLEET_PACKAGES.join(',')}`, SUITE, building, MIRROR],
      { what: `debootstrap the fleet root filesystem into ${building}`, timeoutMs: BUILD_TIMEOUT_MS },
    );
    await prepareRootfs(building);
    await writeFile(join(building, '.complete'), `${new Date().toISOString()}\n`);
    await rename(building, root);
    log(`root filesystem built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return root;
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** Settings every node shares: each boot gets its own machine id, no background apt runs. */
async function prepareRootfs(root: string): Promise<void> {
  // An empty machine-id makes systemd generate one per boot instead of all nodes sharing one.
  await truncate(join(root, 'etc/machine-id'), 0);
  for (const unit of MASKED_UNITS) {
    const link = join(root, 'etc/systemd/system', unit);
    await rm(link, { force: true });
    await symlink('/dev/null', link);
  }
  await run('chroot', [root, 'apt-get', 'clean'], { what: `clean the apt cache of ${root}` });
}

/** Takes the lock directory (true) or reports who holds it (throws, so waitFor retries). */
async function takeLock(lock: string): Promise<true | undefined> {
  try {
    await mkdir(lock);
    await writeFile(join(lock, 'pid'), `${process.pid}\n`);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const owner = Number((await readFile(join(lock, 'pid'), 'utf8').catch(() => '')).trim());
  if (Number.isInteger(owner) && owner > 0 && !processAlive(owner)) {
    // The builder died: its half-made tree is removed by whoever builds next.
    await rm(lock, { recursive: true, force: true });
  }
  throw new Error(`held by PID ${owner || 'unknown (just created)'}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
