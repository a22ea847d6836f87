import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The unprivileged user the agent tests run agents as, standing for oneadmin. scripts/install-deps.sh
 * creates it (as root), with its own group and membership of libvirt and kvm where they exist.
 */
export const TEST_USER = 'onestorage-test';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** Every group id it belongs to (primary and supplementary), as `id -G` lists them. */
  groups: number[];
}

/** The test user's ids; a missing user fails the test loudly, naming the script that creates it. */
export function testUser(): TestUser {
  let entry: string;
  try {
    entry = execFileSync('getent', ['passwd', TEST_USER], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(
      `user ${TEST_USER} does not exist: run "bash scripts/install-deps.sh" as root (it creates the test user; .ci/run does so)`,
    );
  }
  const [, , uid, gid] = entry.split(':');
  const groups = execFileSync('id', ['-G', TEST_USER], { encoding: 'utf8' }).trim().split(/\s+/).map(Number);
  return { name: TEST_USER, uid: Number(uid), gid: Number(gid), groups };
}

/**
 * Fails loudly, naming the cause, when the test user cannot read `file` (a compiled entry point):
 * a checkout under a directory closed to other users (root's home) cannot run agents as it.
 */
export function expectUserCanRead(user: TestUser, file: string): void {
  try {
    execFileSync(process.execPath, ['-e', 'require("fs").accessSync(process.argv[1], 4)', file], {
      uid: user.uid,
      gid: user.gid,
      stdio: 'ignore',
    });
  } catch {
    throw new Error(
      `user ${user.name} cannot read ${file}: check the repository out where other users may read it (not under /root)`,
    );
  }
}

/** Real, effective, saved and filesystem uids and gids, and the groups, of a running process. */
export function processIds(pid: number): { uids: number[]; gids: number[]; groups: number[] } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number[] =>
    (new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '')
      .trim()
      .split(/\s+/)
      .filter((v) => v !== '')
      .map(Number);
  return { uids: field('Uid'), gids: field('Gid'), groups: field('Groups') };
}

export interface OwnershipProblem {
  path: string;
  problem: string;
}

/**
 * Every entry under `dir` (and `dir` itself) whose owner is not `uid` or whose mode is not the
 * expected one: directories `dirMode`, regular files `fileMode` unless `fileModeOf` names another
 * (markers). Symlinks are checked for their owner only (their mode means nothing).
 */
export function ownershipProblems(
  dir: string,
  expect: {
    uid: number;
    fileMode: number;
    dirMode: number;
    fileModeOf?: (name: string) => number | undefined;
  },
): OwnershipProblem[] {
  const problems: OwnershipProblem[] = [];
  const octal = (m: number): string => `0${(m & 0o7777).toString(8)}`;
  const visit = (path: string): void => {
    const st = lstatSync(path);
    if (st.uid !== expect.uid)
      problems.push({ path, problem: `owner uid ${st.uid}, expected ${expect.uid}` });
    if (st.isSymbolicLink()) return;
    const name = path.slice(path.lastIndexOf('/') + 1);
    const want = st.isDirectory() ? expect.dirMode : (expect.fileModeOf?.(name) ?? expect.fileMode);
    if ((st.mode & 0o7777) !== want)
      problems.push({ path, problem: `mode ${octal(st.mode)}, expected ${octal(want)}` });
    if (st.isDirectory()) for (const e of readdirSync(path)) visit(join(path, e));
  };
  visit(dir);
  return problems;
}
