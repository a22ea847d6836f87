import { mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import type { BuildIsoRequest, IsoFile } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { ds, makeTempDir } from '../../../test/support/agent/agent-fixture.js';
import { localAgent } from '../../../test/support/agent/disk-testing.js';
import { buildIsoImage } from './build-iso.js';

const base = await makeTempDir('build-iso-');
const root = join(base, 'datastores');
mkdirSync(join(root, '0/42'), { recursive: true });
mkdirSync(join(root, '1'), { recursive: true });
const { agent, call } = localAgent(root);
const local = (rel: string): string => join(root, rel);
afterAll(() => rmSync(base, { recursive: true, force: true }));

const CONTEXT_SH = "ONEGATE_ENDPOINT='http://10.0.0.1:5030'\nHOSTNAME='vm42'\n";
// Private in the datastore (as under the agent's umask): the ISO still gives the guest 0644.
writeFileSync(local('1/init.sh'), '#!/bin/sh\necho hello\n', { mode: 0o600 });

function req(files: IsoFile[], extra: Partial<BuildIsoRequest> = {}): BuildIsoRequest {
  return { path: ds('0/42/disk.2'), label: 'CONTEXT', files, ...extra };
}

const inline = (name: string, text: string): IsoFile => ({ name, content: Buffer.from(text) });

async function extract(iso: string, name: string): Promise<string> {
  return (await runTool('isoinfo', ['-R', '-x', `/${name}`, '-i', iso])).stdout;
}

async function failure(p: Promise<unknown>): Promise<StorageError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

describe('BuildIso (tm context)', () => {
  it('holds inline and copied files under their names, with the volume label', async () => {
    const files = [inline('context.sh', CONTEXT_SH), { name: 'init.sh', source: ds('1/init.sh') }];
    const res = await buildIsoImage(agent, req(files), call);
    expect(res.bytes).toBeGreaterThan(0);
    const iso = local('0/42/disk.2');
    expect(await extract(iso, 'context.sh')).toBe(CONTEXT_SH);
    expect(await extract(iso, 'init.sh')).toBe('#!/bin/sh\necho hello\n');
    expect((await runTool('isoinfo', ['-d', '-i', iso])).stdout).toMatch(/^Volume id: CONTEXT$/m);
    // Inside the ISO, the modes OpenNebula's context ISOs have, whatever the staged copies had.
    const listing = (await runTool('isoinfo', ['-R', '-l', '-i', iso])).stdout;
    expect(listing.match(/^\S+(?= .* (?:context|init)\.sh\s*$)/gm)).toEqual(['-rw-r--r--', '-rw-r--r--']);
    expect(listing).toMatch(/^drwxr-xr-x .* \.\s*$/m);
    // A repeat builds the same ISO again; nothing temporary is left.
    await buildIsoImage(agent, req(files), call);
    expect(await extract(iso, 'context.sh')).toBe(CONTEXT_SH);
    expect(readdirSync(local('0/42')).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('follows a source symlink that stays inside the roots', async () => {
    symlinkSync(local('1/init.sh'), local('1/link.sh'));
    await buildIsoImage(
      agent,
      req([{ name: 'x.sh', source: ds('1/link.sh') }], { path: ds('0/42/disk.3') }),
      call,
    );
    expect(await extract(local('0/42/disk.3'), 'x.sh')).toMatch(/echo hello/);
  });

  it.each([
    [req([inline('a/b', 'x')]), /files\[0\]\.name must be a plain file name/],
    [req([inline('..', 'x')]), /files\[0\]\.name must be a plain file name/],
    [req([inline('a', 'x'), inline('a', 'y')]), /files\[1\]\.name "a" appears twice/],
    [req([{ name: 'a' }]), /files\[0\] needs a source or a content/],
    [req([], { label: 'THIS LABEL HAS SPACES' }), /label must be 1-32 characters/],
    [req([], { label: '' }), /label is required/],
    [req([{ name: 'd', source: ds('1') }]), /is not a regular file/],
  ])('refuses bad input %#', async (request, message) => {
    const err = await failure(buildIsoImage(agent, request, call));
    expect(err.reason).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(message);
  });

  it('refuses sources outside the roots and reports missing ones', async () => {
    symlinkSync('/etc/shadow', local('1/evil'));
    expect(
      (await failure(buildIsoImage(agent, req([{ name: 'p', source: '/etc/passwd' }]), call))).reason,
    ).toBe('PATH_OUTSIDE_ROOTS');
    expect(
      (await failure(buildIsoImage(agent, req([{ name: 'p', source: ds('1/evil') }]), call))).reason,
    ).toBe('PATH_OUTSIDE_ROOTS');
    const missing = await failure(buildIsoImage(agent, req([{ name: 'p', source: ds('1/nope') }]), call));
    expect(missing.reason).toBe('NOT_FOUND');
    expect(missing.message).toBe('build iso host01:/var/lib/one/datastores/1/nope: no such file');
  });
});
