// Security review, class 5 (docs/security.md#the-attack-tests): an agent configured to run as one user but started as another non-root user
// refuses at once with one line naming the key; it could not become the configured user, and what
// it created would belong to the wrong owner.
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distEntry } from '../../cli/src/demo/processes.js';
import { expectUserCanRead, testUser, type TestUser } from '../support/test-user.js';

const EXIT_USAGE = 2;
/** Present on every Debian and RHEL system, and never the test user. */
const OTHER_USER = 'nobody';

let user: TestUser;
let base: string;

beforeAll(async () => {
  user = testUser();
  expectUserCanRead(user, distEntry('agent/src/main.js'));
  base = await mkdtemp(join(tmpdir(), 'one-storage-unpriv-start-'));
  await chmod(base, 0o755);
});

afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

/** Runs the agent as the test user with `settings` added to a config that is otherwise valid. */
async function startAsTestUser(
  settings: Record<string, unknown>,
): Promise<{ code: number | null; stderr: string }> {
  const config = join(base, 'agent.json');
  await writeFile(
    config,
    JSON.stringify({
      name: 'host01',
      listen: '127.0.0.1:0',
      roots: [{ location: '/var/lib/one/datastores', path: join(base, 'datastores') }],
      tls: { ca: join(base, 'ca.crt'), cert: join(base, 'host01.crt'), key: join(base, 'host01.key') },
      ...settings,
    }),
  );
  await chmod(config, 0o644);
  const child = spawn(process.execPath, [distEntry('agent/src/main.js'), '--config', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
    uid: user.uid,
    gid: user.gid,
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stderr };
}

describe('an agent started as the wrong non-root user', () => {
  it('refuses another user with one line naming "user", before reading anything', async () => {
    const r = await startAsTestUser({ user: OTHER_USER });
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `user: the agent runs as uid ${user.uid}, neither root nor "${OTHER_USER}" .*start it as root or as ${OTHER_USER}`,
      ),
    );
  });

  it('refuses another primary group with one line naming "group"', async () => {
    const r = await startAsTestUser({ user: user.name, group: 'root' });
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`group: the agent runs with gid ${user.gid}, not root \\(gid 0\\)`));
  });
});
