// Conformance of the agent's file RPCs (Hello, MakeDir, RemoveEmptyDirs, Delete, Stat,
// SetMonitorMarker, Copy, CreateProbe): each clause of agent.proto checked against a real agent over
// mutual TLS, every documented repeat made REPEATS times, every documented error reason provoked.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { issueCertificate } from '../../common/src/pki/pki.js';
import { FileKind } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { AGENT_NAME, LOCATION, agentClient, call, ds } from '../support/agent/agent-fixture.js';
import { expectFailure, expectSameEveryTime, useConformanceAgent } from './support/conformance-agent.js';

const c = useConformanceAgent();
const { INVALID_ARGUMENT, PERMISSION_DENIED, ALREADY_EXISTS } = grpc.status;

/** The two path refusals every path-taking RPC shares (agent.proto, "Paths"). */
async function refusesBadPaths(send: (path: string) => Promise<unknown>): Promise<void> {
  await expectFailure(send(ds('0/a/../../../etc')), INVALID_ARGUMENT, 'UNSAFE_PATH');
  await expectFailure(send('relative/path'), INVALID_ARGUMENT, 'UNSAFE_PATH');
  await expectFailure(send(ds('0/x;rm')), INVALID_ARGUMENT, 'UNSAFE_PATH');
  await expectFailure(send('/etc/passwd'), PERMISSION_DENIED, 'PATH_OUTSIDE_ROOTS');
}

describe('Hello', () => {
  it('reports name, version, locations and data address; a repeat gives the same', async () => {
    const hello = await expectSameEveryTime(() => call(c.client.hello.bind(c.client), {}));
    expect(hello.name).toBe(AGENT_NAME);
    expect(hello.locations).toEqual([LOCATION]);
    expect(hello.version).not.toBe('');
    expect(hello.dataAddress).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('refuses a caller without the coordinator role (CALLER_NOT_COORDINATOR)', async () => {
    await issueCertificate(c.pki.dir, 'host02', ['127.0.0.1']);
    const asAgent = agentClient(c.agent.port, c.pki.dir, true, 'host02');
    try {
      await expectFailure(call(asAgent.hello.bind(asAgent), {}), PERMISSION_DENIED, 'CALLER_NOT_COORDINATOR');
    } finally {
      asAgent.close();
    }
  });
});

describe('MakeDir', () => {
  it('creates the missing directories and lists them in made; a repeat succeeds, making nothing', async () => {
    const path = c.made('0/50');
    const first = await call(c.client.makeDir.bind(c.client), { path: `${path}/a/b` });
    expect(first).toEqual({ created: true, made: [path, `${path}/a`, `${path}/a/b`] });
    expect(
      await expectSameEveryTime(() => call(c.client.makeDir.bind(c.client), { path: `${path}/a/b` })),
    ).toEqual({ created: false, made: [] });
  });

  it('a file in the way is ALREADY_EXISTS', async () => {
    writeFileSync(c.local(c.tracker.track('0/file')), 'x');
    await expectFailure(
      call(c.client.makeDir.bind(c.client), { path: ds('0/file') }),
      ALREADY_EXISTS,
      'ALREADY_EXISTS',
    );
  });

  it('refuses unsafe paths and paths outside the roots', async () => {
    await refusesBadPaths((path) => call(c.client.makeDir.bind(c.client), { path }));
  });
});

describe('RemoveEmptyDirs', () => {
  it('removes empty listed directories deepest first, keeps a non-empty one and those above it', async () => {
    const path = c.made('0/51');
    const { made } = await call(c.client.makeDir.bind(c.client), { path: `${path}/a/b` });
    mkdirSync(c.local('0/51/keep'));
    const r = await call(c.client.removeEmptyDirs.bind(c.client), { paths: made });
    expect(r.removed).toEqual([`${path}/a/b`, `${path}/a`]);
    expect(existsSync(c.local('0/51/keep'))).toBe(true);
  });

  it('a repeat succeeds and removes nothing more; the datastore root stays', async () => {
    const path = c.made('0/52');
    const { made } = await call(c.client.makeDir.bind(c.client), { path });
    expect((await call(c.client.removeEmptyDirs.bind(c.client), { paths: made })).removed).toEqual([path]);
    expect(
      (
        await expectSameEveryTime(() =>
          call(c.client.removeEmptyDirs.bind(c.client), { paths: [...made, LOCATION] }),
        )
      ).removed,
    ).toEqual([]);
    expect(existsSync(c.local('0'))).toBe(true);
  });

  it('refuses a bad path before removing anything', async () => {
    const path = c.made('0/53');
    await call(c.client.makeDir.bind(c.client), { path });
    await refusesBadPaths((bad) => call(c.client.removeEmptyDirs.bind(c.client), { paths: [path, bad] }));
    expect(existsSync(c.local('0/53'))).toBe(true);
  });
});

describe('Delete', () => {
  it('removes a tree; a repeat succeeds with existed=false', async () => {
    const path = c.made('0/54');
    mkdirSync(c.local('0/54/sub'), { recursive: true });
    writeFileSync(c.local('0/54/sub/f'), 'x');
    expect(await call(c.client.delete.bind(c.client), { path })).toEqual({ existed: true });
    expect(await expectSameEveryTime(() => call(c.client.delete.bind(c.client), { path }))).toEqual({
      existed: false,
    });
    expect(existsSync(c.local('0/54'))).toBe(false);
  });

  it('removes a symlink, never its target', async () => {
    writeFileSync(c.local(c.tracker.track('0/target')), 'kept');
    symlinkSync('target', c.local(c.tracker.track('0/link')));
    expect(await call(c.client.delete.bind(c.client), { path: ds('0/link') })).toEqual({ existed: true });
    expect(readFileSync(c.local('0/target'), 'utf8')).toBe('kept');
  });

  it('refuses unsafe paths and paths outside the roots', async () => {
    await refusesBadPaths((path) => call(c.client.delete.bind(c.client), { path }));
  });
});

describe('Stat', () => {
  it('describes a file, a link (or with follow its target); absent is exists=false; read-only, so repeatable', async () => {
    writeFileSync(c.local(c.tracker.track('0/s')), 'hello');
    symlinkSync('s', c.local(c.tracker.track('0/s-link')));
    const file = await expectSameEveryTime(() =>
      call(c.client.stat.bind(c.client), { path: ds('0/s'), follow: false }),
    );
    expect(file).toMatchObject({ exists: true, kind: FileKind.FILE_KIND_FILE, size: 5 });
    const link = await call(c.client.stat.bind(c.client), { path: ds('0/s-link'), follow: false });
    expect(link).toMatchObject({ exists: true, kind: FileKind.FILE_KIND_SYMLINK, linkTarget: 's' });
    const followed = await call(c.client.stat.bind(c.client), { path: ds('0/s-link'), follow: true });
    expect(followed).toMatchObject({ exists: true, kind: FileKind.FILE_KIND_FILE, size: 5 });
    const absent = await call(c.client.stat.bind(c.client), { path: ds('0/absent'), follow: false });
    expect(absent.exists).toBe(false);
  });

  it('with follow, a dangling link is exists=false and a link out of the roots PATH_OUTSIDE_ROOTS', async () => {
    symlinkSync('nowhere', c.local(c.tracker.track('0/dangling')));
    symlinkSync('/etc/hostname', c.local(c.tracker.track('0/escape')));
    const dangling = await call(c.client.stat.bind(c.client), { path: ds('0/dangling'), follow: true });
    expect(dangling.exists).toBe(false);
    await expectFailure(
      call(c.client.stat.bind(c.client), { path: ds('0/escape'), follow: true }),
      PERMISSION_DENIED,
      'PATH_OUTSIDE_ROOTS',
    );
  });

  it('refuses unsafe paths and paths outside the roots', async () => {
    await refusesBadPaths((path) => call(c.client.stat.bind(c.client), { path, follow: false }));
  });
});

describe('SetMonitorMarker', () => {
  it('writes <datastore_dir>/.monitor holding the driver; a repeat succeeds; an empty driver removes it', async () => {
    const dir = c.made('0/55');
    mkdirSync(c.local('0/55'));
    await expectSameEveryTime(() =>
      call(c.client.setMonitorMarker.bind(c.client), { datastoreDir: dir, driver: 'qcow2' }),
    );
    expect(readFileSync(c.local('0/55/.monitor'), 'utf8').trim()).toBe('qcow2');
    await expectSameEveryTime(() =>
      call(c.client.setMonitorMarker.bind(c.client), { datastoreDir: dir, driver: '' }),
    );
    expect(existsSync(c.local('0/55/.monitor'))).toBe(false);
  });

  it('refuses unsafe paths and paths outside the roots', async () => {
    await refusesBadPaths((datastoreDir) =>
      call(c.client.setMonitorMarker.bind(c.client), { datastoreDir, driver: 'x' }),
    );
  });
});

describe('Copy', () => {
  it('copies a file into place; a repeat replaces it with the same content', async () => {
    writeFileSync(c.local(c.tracker.track('0/src')), 'content');
    const destination = c.made('0/dst');
    const r = await expectSameEveryTime(() =>
      call(c.client.copy.bind(c.client), { source: ds('0/src'), destination, sparse: true }),
    );
    expect(r.bytes).toBe(7);
    expect(readFileSync(c.local('0/dst'), 'utf8')).toBe('content');
  });

  it('a source symlink is followed and its content copied; one leading out of the roots is PATH_OUTSIDE_ROOTS', async () => {
    writeFileSync(c.local(c.tracker.track('0/real')), 'real');
    symlinkSync('real', c.local(c.tracker.track('0/via')));
    symlinkSync('/etc/hostname', c.local(c.tracker.track('0/out')));
    const destination = c.made('0/copied');
    await call(c.client.copy.bind(c.client), { source: ds('0/via'), destination, sparse: true });
    expect(readFileSync(c.local('0/copied'), 'utf8')).toBe('real');
    await expectFailure(
      call(c.client.copy.bind(c.client), { source: ds('0/out'), destination, sparse: true }),
      PERMISSION_DENIED,
      'PATH_OUTSIDE_ROOTS',
    );
  });

  it('a missing source is NOT_FOUND; bad paths are refused', async () => {
    await expectFailure(
      call(c.client.copy.bind(c.client), { source: ds('0/missing'), destination: ds('0/x'), sparse: true }),
      grpc.status.NOT_FOUND,
      'NOT_FOUND',
      /missing/,
    );
    await refusesBadPaths((source) =>
      call(c.client.copy.bind(c.client), { source, destination: ds('0/x'), sparse: true }),
    );
  });
});

describe('CreateProbe', () => {
  it('creates an empty file named by the caller in dir; a repeat finds the same probe', async () => {
    const dir = c.made('0/56');
    mkdirSync(c.local('0/56'));
    const name = `.probe-${randomBytes(16).toString('hex')}`;
    const first = await call(c.client.createProbe.bind(c.client), { dir, name });
    expect(first).toEqual({ path: `${dir}/${name}`, created: true });
    expect(readFileSync(c.local(`0/56/${name}`), 'utf8')).toBe('');
    await expectSameEveryTime(() => call(c.client.createProbe.bind(c.client), { dir, name }));
    const again = await call(c.client.createProbe.bind(c.client), { dir, name });
    expect(again).toEqual({ path: first.path, created: false });
    expect(readdirSync(c.local('0/56'))).toEqual([name]);
  });

  it('refuses a name that is not a probe name, naming the field', async () => {
    const dir = c.made('0/57');
    mkdirSync(c.local('0/57'));
    for (const name of ['', 'disk.0', '.probe-../x', `.probe-${'A'.repeat(32)}`]) {
      await expectFailure(
        call(c.client.createProbe.bind(c.client), { dir, name }),
        grpc.status.INVALID_ARGUMENT,
        'INVALID_ARGUMENT',
        /name/,
      );
    }
    expect(readdirSync(c.local('0/57'))).toEqual([]);
  });

  it('refuses unsafe paths and paths outside the roots', async () => {
    const name = `.probe-${randomBytes(16).toString('hex')}`;
    await refusesBadPaths((dir) => call(c.client.createProbe.bind(c.client), { dir, name }));
  });
});
