// The roles' own tasks, run for real with `ansible-playbook -c local` on this machine (no systemd:
// the unit tasks are skipped by their guard), every path pointed into a temporary directory and
// the service user being root: site.yml converges, a second run changes nothing, oned.conf (a copy
// of a stock-style one) gets our drivers and vmm_execrc our live-snapshot pairs, and uninstall.yml
// gives both files back byte for byte, with the datastore directory and its files untouched.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recap, runTool } from './ansible-tools.js';

const STOCK = readFileSync('test/ansible/fixtures/stock-oned.conf', 'utf8');
// OpenNebula's stock vmm_execrc (src/vmm_mad/exec/vmm_execrc), in substance.
const STOCK_VMM_EXECRC =
  '# VMM-TM pairs that support live disk snapshots\n' +
  'LIVE_DISK_SNAPSHOTS="kvm-qcow2 kvm-shared kvm-ceph kvm-ssh qemu-qcow2 qemu-shared qemu-ceph qemu-ssh"\n\n' +
  'VNMAD_LOCAL_ACTIONS="elastic-post elastic-clean"\n';
const dir = mkdtempSync(join(tmpdir(), 'ansible-local-'));
const inventory = join(dir, 'inventory.yml');
const play = (playbook: string, extraVars: Record<string, unknown> = {}) =>
  runTool(
    'ansible-playbook',
    ['-i', inventory, '-e', JSON.stringify(extraVars), resolve('deploy/ansible', playbook)],
    600_000,
  );
const buildArtifact = (v: string): { artifact: string; version: string } => {
  const built = spawnSync(
    'bash',
    ['packaging/build-artifact.sh', '--source', '.', '--out', join(dir, 'artifacts'), '--version', v],
    { encoding: 'utf8', timeout: 300_000 },
  );
  if (built.status !== 0) throw new Error(`build-artifact.sh failed: ${built.stderr}`);
  return JSON.parse(built.stdout) as { artifact: string; version: string };
};
let artifact: string;
let version: string;

beforeAll(() => {
  ({ artifact, version } = buildArtifact('9.9.8-local'));
  writeFileSync(join(dir, 'oned.conf'), STOCK);
  writeFileSync(join(dir, 'vmm_execrc'), STOCK_VMM_EXECRC);
  mkdirSync(join(dir, 'ds', '0'), { recursive: true });
  writeFileSync(join(dir, 'ds', '0', 'disk.0'), 'vm data');
  const p = (sub: string): string => join(dir, sub);
  writeFileSync(
    inventory,
    JSON.stringify({
      all: {
        vars: {
          ansible_connection: 'local',
          ansible_python_interpreter: '/usr/bin/python3',
          one_storage_user: 'root',
          one_storage_group: 'root',
          one_storage_node_source: 'package',
          one_storage_artifact: artifact,
          one_storage_artifact_dir: p('artifacts'),
          one_storage_pki_dir: p('pki'),
          one_storage_install_dir: p('opt'),
          one_storage_config_dir: p('etc'),
          one_storage_pki_remote_dir: p('etc/pki'),
          one_storage_systemd_dir: p('units'),
          one_storage_bin_dir: p('bin'),
          one_storage_remotes_dir: p('remotes'),
          one_storage_oned_conf: p('oned.conf'),
          one_storage_vmm_execrc: p('vmm_execrc'),
          one_storage_roots: [{ location: '/var/lib/one/datastores', path: p('ds') }],
          one_storage_addresses: ['127.0.0.1'],
        },
        children: {
          frontend: { hosts: { fe: { one_storage_name: 'frontend' } } },
          agents: { children: { frontend: {} } },
        },
      },
    }),
  );
  mkdirSync(p('units'));
  mkdirSync(p('bin'));
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('site.yml, then uninstall.yml, run locally', () => {
  it('converges: the version directory, current, configs, certificates, shims and oned.conf', () => {
    const r = play('site.yml');
    expect(r.status, r.stdout.slice(-4000)).toBe(0);
    expect(recap(r.stdout, 'fe')).toMatchObject({ failed: 0, unreachable: 0 });
    expect(readlinkSync(join(dir, 'opt', 'current'))).toBe(join(dir, 'opt', version));
    expect(statSync(join(dir, 'etc', 'pki', 'frontend.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'etc', 'pki', 'coordinator.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'etc', 'coordinator.yaml'), 'utf8')).toMatch(
      /agents:\n {2}frontend:\n {4}endpoint: 127\.0\.0\.1:7001/,
    );
    expect(readFileSync(join(dir, 'units', 'one-storage-agent.service'), 'utf8')).toMatch(
      new RegExp(`ReadWritePaths=${join(dir, 'ds')} `),
    );
    expect(readFileSync(join(dir, 'remotes', 'tm', 'grpc', 'clone'), 'utf8')).toContain(
      join(dir, 'opt', 'current', 'dist', 'shims', 'src', 'run-shim.cjs'),
    );
    const conf = readFileSync(join(dir, 'oned.conf'), 'utf8');
    expect(conf).toMatch(
      /-d dummy,lvm,shared,fs_lvm,fs_lvm_ssh,qcow2,ssh,ceph,dev,vcenter,iscsi_libvirt,grpc,grpc_qcow2"/,
    );
    expect(conf).toContain('# BEGIN one-storage drivers');
    expect(readFileSync(join(dir, 'vmm_execrc'), 'utf8')).toMatch(
      /^LIVE_DISK_SNAPSHOTS="kvm-qcow2 [^"]* qemu-ssh kvm-grpc kvm-grpc_qcow2 qemu-grpc qemu-grpc_qcow2"$/m,
    );
    expect(r.stdout).toContain("oned's unit (opennebula.service) is not installed on fe");
  }, 600_000);

  it('a second run changes nothing', () => {
    const r = play('site.yml');
    expect(r.status, r.stdout.slice(-4000)).toBe(0);
    expect(recap(r.stdout, 'fe')).toMatchObject({ changed: 0, failed: 0 });
  }, 600_000);

  it('one_storage_pki_trusted_cas makes every node trust a second CA; without it, the CA alone again', () => {
    const hostCa = join(dir, 'etc', 'pki', 'ca.crt');
    const ownCa = readFileSync(join(dir, 'pki', 'ca.crt'), 'utf8');
    expect(readFileSync(hostCa, 'utf8')).toBe(ownCa);
    const next = spawnSync(
      process.execPath,
      ['dist/cli/src/main.js', 'pki', 'init', '--dir', join(dir, 'pki.new')],
      {
        encoding: 'utf8',
      },
    );
    expect(next.status, next.stderr).toBe(0);
    const newCa = readFileSync(join(dir, 'pki.new', 'ca.crt'), 'utf8');
    const both = play('site.yml', { one_storage_pki_trusted_cas: [join(dir, 'pki.new', 'ca.crt')] });
    expect(both.status, both.stdout.slice(-4000)).toBe(0);
    expect(readFileSync(hostCa, 'utf8')).toBe(ownCa + newCa);
    const alone = play('site.yml');
    expect(alone.status, alone.stdout.slice(-4000)).toBe(0);
    expect(readFileSync(hostCa, 'utf8')).toBe(ownCa);
  }, 900_000);

  it('a newer artifact becomes current and keeps the old version; keep_versions 0 prunes it and its tarball', () => {
    const next = buildArtifact('9.9.9-local');
    const up = play('site.yml', { one_storage_artifact: next.artifact });
    expect(up.status, up.stdout.slice(-4000)).toBe(0);
    expect(readlinkSync(join(dir, 'opt', 'current'))).toBe(join(dir, 'opt', next.version));
    expect(existsSync(join(dir, 'opt', version, '.artifact-sha256'))).toBe(true);
    const pruned = play('site.yml', { one_storage_artifact: next.artifact, one_storage_keep_versions: 0 });
    expect(pruned.status, pruned.stdout.slice(-4000)).toBe(0);
    expect(recap(pruned.stdout, 'fe')).toMatchObject({ changed: 1, failed: 0 });
    expect(existsSync(join(dir, 'opt', version))).toBe(false);
    expect(readdirSync(join(dir, 'opt', '.artifacts'))).toEqual([basename(next.artifact)]);
    expect(readlinkSync(join(dir, 'opt', 'current'))).toBe(join(dir, 'opt', next.version));
  }, 900_000);

  it('uninstall gives oned.conf and vmm_execrc back byte for byte and leaves the datastore files', () => {
    const r = play('uninstall.yml');
    expect(r.status, r.stdout.slice(-4000)).toBe(0);
    expect(readFileSync(join(dir, 'oned.conf'), 'utf8')).toBe(STOCK);
    expect(readFileSync(join(dir, 'vmm_execrc'), 'utf8')).toBe(STOCK_VMM_EXECRC);
    expect(existsSync(join(dir, 'remotes', 'tm', 'grpc'))).toBe(false);
    expect(existsSync(join(dir, 'opt'))).toBe(false);
    expect(existsSync(join(dir, 'etc'))).toBe(false);
    expect(readFileSync(join(dir, 'ds', '0', 'disk.0'), 'utf8')).toBe('vm data');
  }, 600_000);
});
