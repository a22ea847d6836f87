import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { ds, makeTempDir } from '../../../test/support/agent/agent-fixture.js';
import { localAgent } from '../../../test/support/agent/disk-testing.js';
import { saveTpmState, vmHasTpm } from '../backup/tpm-state.js';
import { backupDirs } from '../backup/backup-dirs.js';
import { restoreTpm } from './restore-tpm.js';

// The vTPM state (docs/backups.md#vtpm): prebackup's archive of <vmdir>/tpm, and RestoreTpm, which
// refuses archives that would write outside tpm/ and leaves the old state whole when it does.

const base = await makeTempDir('restore-tpm-');
const root = join(base, 'datastores');
const { agent, call } = localAgent(root);
const local = (rel: string): string => join(root, rel);
afterAll(() => rmSync(base, { recursive: true, force: true }));

const VM_XML = '<VM><ID>7</ID><TEMPLATE><TPM><MODEL>tpm-crb</MODEL></TPM></TEMPLATE></VM>';

function tpmState(vm: string, marker: string): void {
  mkdirSync(local(`0/${vm}/tpm/tpm2`), { recursive: true });
  writeFileSync(local(`0/${vm}/tpm/tpm2/tpm2-00.permall`), marker);
}

/** SHA256SUMS beside the archive, listing it as disk.tpm.0 (`digestOf`: another file's bytes). */
function sums(vm: string, digestOf = `0/${vm}/disk.tpm.backup`): void {
  const hex = createHash('sha256')
    .update(readFileSync(local(digestOf)))
    .digest('hex');
  writeFileSync(local(`0/${vm}/SHA256SUMS.backup`), `${'0'.repeat(64)}  vm.xml\n${hex}  disk.tpm.0\n`);
}

const tpmReq = (vm: string) => ({
  archive: ds(`0/${vm}/disk.tpm.backup`),
  sums: ds(`0/${vm}/SHA256SUMS.backup`),
  vmDir: ds(`0/${vm}`),
});

async function failure(p: Promise<unknown>): Promise<StorageError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

/** A crafted archive at `<vm>/disk.tpm.backup`: `tar` run in `dir` over `members`. */
async function crafted(vm: string, dir: string, members: string[], extra: string[] = []): Promise<void> {
  await runTool('tar', ['-c', '-z', '-f', local(`0/${vm}/disk.tpm.backup`), ...extra, '-C', dir, ...members]);
}

describe('vTPM state', () => {
  it('prebackup writes backup/disk.tpm.0 for a VM with a TPM; RestoreTpm puts it back over newer state', async () => {
    expect(vmHasTpm(VM_XML)).toBe(true);
    expect(vmHasTpm('<VM><ID>7</ID><TEMPLATE><CPU>1</CPU></TEMPLATE></VM>')).toBe(false);
    expect(vmHasTpm('not xml <')).toBe(false);
    tpmState('10', 'saved');
    const dirs = backupDirs(local('0/10'));
    mkdirSync(dirs.bck, { recursive: true });
    const log = pino({ level: 'silent' });
    expect(await saveTpmState({ vmXml: VM_XML, dirs, log, signal: call.signal })).toBe(true);
    expect(existsSync(join(dirs.bck, 'disk.tpm.0'))).toBe(true);
    // No TPM in the template: nothing written.
    const other = backupDirs(local('0/11'));
    mkdirSync(other.bck, { recursive: true });
    tpmState('11', 'x');
    expect(await saveTpmState({ vmXml: '<VM><TEMPLATE/></VM>', dirs: other, log, signal: call.signal })).toBe(
      false,
    );
    expect(readdirSync(other.bck)).toEqual([]);

    writeFileSync(local('0/10/tpm/tpm2/tpm2-00.permall'), 'newer');
    writeFileSync(local('0/10/tpm/stray'), 'gone after restore');
    const archive = local('0/10/disk.tpm.backup');
    writeFileSync(archive, readFileSync(join(dirs.bck, 'disk.tpm.0')));
    // A SHA256SUMS that does not list the archive's bytes: refused, the state left.
    sums('10', '0/10/tpm/stray');
    const bad = await failure(restoreTpm(agent, tpmReq('10'), call));
    expect(bad.reason).toBe('CHECKSUM_MISMATCH');
    expect(bad.message).toMatch(/disk\.tpm\.0 does not match its SHA256SUMS/);
    expect(readFileSync(local('0/10/tpm/tpm2/tpm2-00.permall'), 'utf8')).toBe('newer');
    expect(existsSync(archive)).toBe(false);
    writeFileSync(archive, readFileSync(join(dirs.bck, 'disk.tpm.0')));
    sums('10');
    const r = await restoreTpm(agent, tpmReq('10'), call);
    expect(r.files).toBe(1);
    expect(readFileSync(local('0/10/tpm/tpm2/tpm2-00.permall'), 'utf8')).toBe('saved');
    expect(existsSync(local('0/10/tpm/stray'))).toBe(false);
    expect(existsSync(archive)).toBe(false);
    expect(readdirSync(local('0/10')).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('refuses members outside tpm/, absolute or with "..", and symlinks; the old state is left, the archive removed', async () => {
    tpmState('20', 'old');
    const evil = join(base, 'evil');
    mkdirSync(join(evil, 'tpm'), { recursive: true });
    writeFileSync(join(evil, 'tpm', 'f'), 'x');
    writeFileSync(join(evil, 'outside'), 'x');
    symlinkSync('/etc', join(evil, 'tpm', 'link'));
    const cases: Array<[string[], string[], RegExp]> = [
      [['tpm/f', 'outside'], [], /member "outside" is not under tpm\//],
      [['tpm/f', 'tpm/../outside'], [], /is not under tpm\//],
      [[join(evil, 'tpm/f')], ['-P'], /is not under tpm\//],
      [['tpm'], [], /member "tpm\/link" is not a plain file or a directory/],
    ];
    for (const [members, extra, message] of cases) {
      await crafted('20', evil, members, extra);
      sums('20');
      const err = await failure(restoreTpm(agent, tpmReq('20'), call));
      expect(err.reason).toBe('BAD_IMAGE');
      expect(err.message).toMatch(message);
      expect(readFileSync(local('0/20/tpm/tpm2/tpm2-00.permall'), 'utf8')).toBe('old');
      expect(readdirSync(local('0/20')).sort()).toEqual(['tpm']);
    }
    writeFileSync(local('0/20/disk.tpm.backup'), 'not a tarball');
    sums('20');
    const err = await failure(restoreTpm(agent, tpmReq('20'), call));
    expect(err.message).toMatch(/not a tar\.gz/);
    expect(readdirSync(local('0/20')).sort()).toEqual(['tpm']);
  });
});
