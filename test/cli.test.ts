// The command-line surface as an operator (or Ansible) uses it: real processes, real openssl.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distEntry } from '../cli/src/demo/processes.js';
import { identityOfCertificate } from '../common/src/certificate-role.js';

let dir: string;
const run = (entry: string, args: string[]) =>
  spawnSync(process.execPath, [distEntry(entry), ...args], { encoding: 'utf8', timeout: 30_000 });
const cli = (args: string[]) => run('cli/src/main.js', args);
const subjectOf = (crt: string): string =>
  execFileSync('openssl', ['x509', '-in', crt, '-noout', '-subject'], { encoding: 'utf8' }).trim();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'one-storage-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('one-storage pki', () => {
  it('init creates a CA once and keeps it on a re-run', () => {
    const first = cli(['pki', 'init', '--dir', join(dir, 'pki')]);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/created CA/);
    const ca = readFileSync(join(dir, 'pki', 'ca.crt'), 'utf8');
    expect(statSync(join(dir, 'pki', 'ca.key')).mode & 0o777).toBe(0o600);
    const again = cli(['pki', 'init', '--dir', join(dir, 'pki')]);
    expect(again.stdout).toMatch(/already exists; kept/);
    expect(readFileSync(join(dir, 'pki', 'ca.crt'), 'utf8')).toBe(ca);
  });

  it('issue makes a certificate the CA verifies, with the name and address in subjectAltName', () => {
    const r = cli([
      'pki',
      'issue',
      '--dir',
      join(dir, 'pki'),
      '--name',
      'host01',
      '--ip',
      '127.0.0.1',
      '--ip',
      '::1',
    ]);
    expect(r.status, r.stderr).toBe(0);
    const crt = join(dir, 'pki', 'host01.crt');
    expect(
      execFileSync('openssl', ['verify', '-CAfile', join(dir, 'pki', 'ca.crt'), crt], { encoding: 'utf8' }),
    ).toMatch(/OK/);
    const text = execFileSync('openssl', ['x509', '-in', crt, '-noout', '-text'], { encoding: 'utf8' });
    expect(text).toMatch(/DNS:host01, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
    expect(text).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    // Without --role, the role that can do least.
    expect(subjectOf(crt)).toBe('subject=OU = one-storage-agent, CN = host01');
  });

  it('issue --role coordinator puts the role in the subject, node reads it back, and a role change needs --force', () => {
    const args = ['pki', 'issue', '--dir', join(dir, 'pki'), '--name', 'coordinator'];
    const r = cli([...args, '--role', 'coordinator']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/issued .*coordinator\.crt \(role coordinator\)/);
    const crt = join(dir, 'pki', 'coordinator.crt');
    expect(subjectOf(crt)).toBe('subject=OU = one-storage-coordinator, CN = coordinator');
    expect(identityOfCertificate(readFileSync(crt))).toEqual({ name: 'coordinator', role: 'coordinator' });

    const same = cli([...args, '--role', 'coordinator']);
    expect([same.status, same.stdout.trim()]).toEqual([0, `${crt} (role coordinator) already exists; kept`]);
    const other = cli(args);
    expect(other.status).not.toBe(0);
    expect(other.stderr.trim()).toBe(
      `one-storage: pki issue: ${crt} exists with role coordinator, not agent; add --force to replace it`,
    );
    expect(identityOfCertificate(readFileSync(crt)).role).toBe('coordinator');
    expect(cli([...args, '--force']).status).toBe(0);
    expect(identityOfCertificate(readFileSync(crt)).role).toBe('agent');
  });

  it.each([
    [['pki', 'issue', '--dir', 'x'], /pki issue needs --dir and --name/],
    [['pki', 'issue', '--dir', '/nonexistent-pki', '--name', 'h'], /no CA in \/nonexistent-pki/],
    [['pki', 'issue', '--dir', '/tmp', '--name', 'bad name;rm'], /invalid --name/],
    [
      ['pki', 'issue', '--dir', '/tmp', '--name', 'h', '--ip', 'not-an-ip'],
      /--ip "not-an-ip" is not an IP address/,
    ],
    [
      ['pki', 'issue', '--dir', '/tmp', '--name', 'h', '--role', 'admin'],
      /--role must be coordinator or agent/,
    ],
    [['frobnicate'], /unknown command "frobnicate"/],
    [[], /no command given/],
  ])('%j fails with one clear line', (args, pattern) => {
    const r = cli(args);
    expect(r.status).not.toBe(0);
    expect(r.stderr.split('\n')[0]).toMatch(pattern);
  });
});

describe('one-storage shims install', () => {
  it('installs every action, both backup spellings and the mixed-mode names, idempotently', () => {
    const remotes = join(dir, 'remotes');
    const r = cli([
      'shims',
      'install',
      '--remotes',
      remotes,
      '--socket',
      '/run/one-storage/coordinator.sock',
    ]);
    expect(r.status, r.stderr).toBe(0);
    for (const f of [
      'tm/grpc/clone',
      'tm/grpc/clone.ssh',
      'tm/grpc/pre_backup',
      'tm/grpc/prebackup_live',
      'tm/grpc/monitor_ds',
      'tm/grpc_qcow2/ln.grpc',
      'tm/grpc_qcow2/snap_create_live.ssh',
      'datastore/grpc/cp',
      'datastore/grpc_backup/backup',
    ]) {
      expect(existsSync(join(remotes, f)), f).toBe(true);
      expect(statSync(join(remotes, f)).mode & 0o777).toBe(0o755);
    }
    const before = readFileSync(join(remotes, 'tm/grpc/clone'), 'utf8');
    expect(
      cli(['shims', 'install', '--remotes', remotes, '--socket', '/run/one-storage/coordinator.sock']).status,
    ).toBe(0);
    expect(readFileSync(join(remotes, 'tm/grpc/clone'), 'utf8')).toBe(before);
  });
});

describe('daemons refuse a bad config with one line naming the key (exit 2)', () => {
  it('the coordinator', async () => {
    const file = join(dir, 'coordinator.json');
    await writeFile(file, JSON.stringify({ socket: 'relative.sock' }));
    const r = run('coordinator/src/main.js', ['--config', file]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`one-storage-coordinator: config ${file}: agents: must be a mapping`);
  });

  it('the coordinator, given a file that is not YAML', async () => {
    const file = join(dir, 'broken.yaml');
    await writeFile(file, 'socket: [unclosed\n');
    const r = run('coordinator/src/main.js', ['--config', file]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/not valid YAML\/JSON/);
  });

  it('the agent', async () => {
    const file = join(dir, 'agent.yaml');
    await writeFile(file, 'name: host01\nlisten: nowhere\n');
    const r = run('agent/src/main.js', ['--config', file]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/listen/);
  });
});

describe('one-storage oned-conf', () => {
  it('prints the TM_MAD_CONF, DATASTORE_MAD and DS_MAD_CONF blocks that docs/oned-conf.md carries', () => {
    const r = cli(['oned-conf']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /TM_MAD_CONF = \[\n {4}NAME = "grpc", LN_TARGET = "SYSTEM", CLONE_TARGET = "SYSTEM", SHARED = "NO"/,
    );
    expect(r.stdout).toMatch(
      /NAME = "grpc_qcow2", LN_TARGET = "NONE", CLONE_TARGET = "SYSTEM", SHARED = "YES"/,
    );
    expect(r.stdout).toMatch(
      /DATASTORE_MAD = \[\n(?:.*\n)*? {4}ARGUMENTS = "[^"]*-d [^" ]*,grpc,grpc_backup -s [^"]*,grpc_qcow2"/,
    );
    expect(r.stdout).toMatch(
      /DS_MAD_CONF = \[\n {4}NAME = "grpc", REQUIRED_ATTRS = "", PERSISTENT_ONLY = "NO"/,
    );
    expect(r.stdout).toMatch(
      /DS_MAD_CONF = \[\n {4}NAME = "grpc_backup", REQUIRED_ATTRS = "GRPC_BACKUP_HOST", PERSISTENT_ONLY = "YES"/,
    );
    expect(readFileSync(new URL('../docs/oned-conf.md', import.meta.url), 'utf8')).toContain(r.stdout);
  });
});

describe('one-storage vmm-execrc', () => {
  it('adds our VMM-TM pairs to LIVE_DISK_SNAPSHOTS keeping the mode, says unchanged on a re-run, and --remove undoes it', async () => {
    const file = join(dir, 'vmm_execrc');
    const stock = 'LIVE_DISK_SNAPSHOTS="kvm-qcow2 kvm-ssh"\nVNMAD_LOCAL_ACTIONS="elastic-post"\n';
    await writeFile(file, stock, { mode: 0o640 });
    const check = cli(['vmm-execrc', '--apply', file, '--check']);
    expect(check.stdout.trim()).toBe(`would change ${file}`);
    expect(readFileSync(file, 'utf8')).toBe(stock);
    const apply = cli(['vmm-execrc', '--apply', file]);
    expect(apply.status, apply.stderr).toBe(0);
    expect(apply.stdout.trim()).toBe(`changed ${file}`);
    expect(readFileSync(file, 'utf8')).toMatch(
      /^LIVE_DISK_SNAPSHOTS="kvm-qcow2 kvm-ssh kvm-grpc kvm-grpc_qcow2 qemu-grpc/,
    );
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(cli(['vmm-execrc', '--apply', file]).stdout.trim()).toBe(`unchanged ${file}`);
    const remove = cli(['vmm-execrc', '--remove', file]);
    expect(remove.stdout.trim()).toBe(`changed ${file}`);
    expect(readFileSync(file, 'utf8')).toBe(stock);
  });

  it('a file it cannot edit safely gets one line naming it, and is left as it was', async () => {
    const file = join(dir, 'vmm_execrc.dynamic');
    const text = 'LIVE_DISK_SNAPSHOTS="$(cat /etc/pairs)"\n';
    await writeFile(file, text);
    const r = cli(['vmm-execrc', '--apply', file]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`${file}: line 1`);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });
});
