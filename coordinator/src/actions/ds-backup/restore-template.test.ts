import { describe, expect, it } from 'vitest';
import { readBackupVm, renderTemplate, restoreVmTemplate } from './restore-template.js';

const cd = (name: string, value: string): string => `<${name}><![CDATA[${value}]]></${name}>`;
const vector = (name: string, attrs: Record<string, string>): string =>
  `<${name}>${Object.entries(attrs)
    .map(([k, v]) => cd(k, v))
    .join('')}</${name}>`;

/** A VM as oned serialises it: two image disks, a volatile disk, a CD-ROM, two NICs, and the rest. */
function vmXml(extraTemplate = '', userTemplate = ''): string {
  return (
    '<VM><ID>42</ID><UID>3</UID><GID>1</GID><NAME>web</NAME>' +
    '<TEMPLATE>' +
    cd('AUTOMATIC_REQUIREMENTS', '!(PUBLIC_CLOUD = YES)') +
    vector('CONTEXT', {
      DISK_ID: '4',
      ETH0_IP: '10.0.0.5',
      ETH0_MAC: '02:00:0a:00:00:05',
      ETH1_IP: '10.0.1.7',
      NETWORK: 'YES',
      METHOD: 'keep-me',
      SSH_PUBLIC_KEY: 'ssh-ed25519 AAAA "quoted" key',
      TARGET: 'hda',
    }) +
    cd('CPU', '1') +
    vector('DISK', {
      ALLOW_ORPHANS: 'FORMAT',
      CLONE: 'YES',
      DATASTORE: 'default',
      DATASTORE_ID: '1',
      DEV_PREFIX: 'vd',
      DISK_ID: '0',
      DRIVER: 'qcow2',
      FORMAT: 'qcow2',
      IMAGE: 'alpine',
      IMAGE_ID: '7',
      SIZE: '256',
      SOURCE: '/var/lib/one//datastores/1/abc',
      TARGET: 'vda',
      TM_MAD: 'grpc',
      TYPE: 'FILE',
    }) +
    vector('DISK', {
      DISK_ID: '1',
      IMAGE_ID: '8',
      SIZE: '1024',
      TARGET: 'vdb',
      TYPE: 'FILE',
      CACHE: 'none',
    }) +
    vector('DISK', { DISK_ID: '2', SIZE: '512', TARGET: 'vdc', TYPE: 'fs', FORMAT: 'raw' }) +
    vector('DISK', { DISK_ID: '3', IMAGE_ID: '9', TARGET: 'hdb', TYPE: 'CDROM' }) +
    vector('DISK', { DISK_ID: '5', IMAGE_ID: '11', SIZE: '64', TARGET: 'vdd', TYPE: 'FILE' }) +
    vector('GRAPHICS', { LISTEN: '0.0.0.0', PORT: '5942', TYPE: 'VNC' }) +
    cd('MEMORY', '512') +
    vector('NIC', {
      AR_ID: '0',
      BRIDGE: 'br0',
      IP: '10.0.0.5',
      IP6: 'fd00::5',
      MAC: '02:00:0a:00:00:05',
      MODEL: 'virtio',
      NAME: 'NIC0',
      NETWORK: 'private',
      NETWORK_ID: '0',
      NIC_ID: '0',
      TARGET: 'one-42-0',
      VN_MAD: 'bridge',
    }) +
    vector('NIC', { IP6: 'fd00::9', MAC: '02:00:00:00:00:09', NETWORK: 'v6', NIC_ID: '1' }) +
    vector('NUMA_NODE', { CPUS: '0', MEMORY: '512', MEMORY_NODE_ID: '0', NODE_ID: '0', TOTAL_CPUS: '1' }) +
    vector('OS', { ARCH: 'x86_64', UUID: '0b8e7a3c-1d0c-4f2a-9a7e-5b1c2d3e4f50' }) +
    vector('PCI', {
      ADDRESS: '0000:01:00.0',
      CLASS: '0300',
      DEVICE: '1234',
      VENDOR: '10de',
      VM_SLOT: '0x06',
    }) +
    cd('SECURITY_GROUP_RULE', '') +
    cd('TEMPLATE_ID', '12') +
    cd('TM_MAD_SYSTEM', 'grpc') +
    cd('VMID', '42') +
    extraTemplate +
    '</TEMPLATE>' +
    `<USER_TEMPLATE>${cd('DESCRIPTION', 'the web server')}${cd('MEMORY', '2048')}${userTemplate}</USER_TEMPLATE>` +
    '<HISTORY_RECORDS/></VM>'
  );
}
const b64 = (xml: string): string =>
  Buffer.from(xml)
    .toString('base64')
    .replace(/(.{60})/g, '$1\n');

/** Every `NAME = [ ... ]` block (or `NAME = "..."` line) of a rendered template, in order. */
function blocks(text: string, name: string): string[] {
  const re = new RegExp(`^${name} = (\\[[^\\]]*\\]|"[^\\n]*")$`, 'gm');
  return [...text.matchAll(re)].map((m) => m[1] as string);
}

const RESTORED = new Map([
  [0, 100],
  [1, 101],
]);
const OPTS = { name: '42-8a3454', noNic: false, noIp: false };

describe('readBackupVm', () => {
  it('reads the id and merges USER_TEMPLATE over TEMPLATE in place', () => {
    const vm = readBackupVm(b64(vmXml()), 'vm.xml');
    expect(vm.id).toBe(42);
    expect(vm.template.get('MEMORY')).toEqual(['2048']);
    expect([...vm.template.keys()].indexOf('MEMORY')).toBeLessThan([...vm.template.keys()].indexOf('NIC'));
    expect(vm.template.get('DISK')).toHaveLength(5);
  });

  it.each([
    ['', 'is not base64 text'],
    ['not base64 at all!', 'is not base64 text'],
    [Buffer.from('<VM><ID>1</ID>').toString('base64'), 'does not hold a VM document'],
    [Buffer.from('<IMAGE><ID>1</ID></IMAGE>').toString('base64'), 'has no /VM element'],
    [Buffer.from('<VM><NAME>x</NAME></VM>').toString('base64'), 'has no /VM/ID'],
  ])('refuses %j in one line', (text, why) => {
    expect(() => readBackupVm(text, 'backup01:/b/42/8a3454/vm.xml')).toThrow(
      `backup01:/b/42/8a3454/vm.xml: ${why}`,
    );
  });
});

describe('restoreVmTemplate', () => {
  const vm = readBackupVm(b64(vmXml()), 'vm.xml');

  it('strips the old VM ids, placement and ports, keeping what the user wrote', () => {
    const { text } = restoreVmTemplate(vm, RESTORED, OPTS);
    for (const gone of [
      'AUTOMATIC_REQUIREMENTS',
      'VMID',
      'TEMPLATE_ID',
      'TM_MAD_SYSTEM',
      'SECURITY_GROUP_RULE',
    ]) {
      expect(text).not.toMatch(new RegExp(`^${gone} =`, 'm'));
    }
    expect(blocks(text, 'NAME')).toEqual(['"42-8a3454"']);
    expect(blocks(text, 'MEMORY')).toEqual(['"2048"']);
    expect(blocks(text, 'DESCRIPTION')).toEqual(['"the web server"']);
    expect(blocks(text, 'GRAPHICS')).toEqual(['[\n  LISTEN = "0.0.0.0",\n  TYPE = "VNC" ]']);
    expect(blocks(text, 'NUMA_NODE')).toEqual(['[\n  MEMORY = "512",\n  TOTAL_CPUS = "1" ]']);
    expect(blocks(text, 'OS')).toEqual(['[\n  ARCH = "x86_64" ]']);
    expect(blocks(text, 'PCI')).toEqual(['[\n  CLASS = "0300",\n  DEVICE = "1234",\n  VENDOR = "10de" ]']);
  });

  it('drops the generated context variables and escapes quotes', () => {
    const [context] = blocks(restoreVmTemplate(vm, RESTORED, OPTS).text, 'CONTEXT');
    expect(context).toBe(
      '[\n  NETWORK = "YES",\n  METHOD = "keep-me",\n  SSH_PUBLIC_KEY = "ssh-ed25519 AAAA \\"quoted\\" key",\n  TARGET = "hda" ]',
    );
  });

  it('points restored disks at the new images, keeps CD-ROMs, volatile disks and disks not backed up', () => {
    const r = restoreVmTemplate(vm, RESTORED, OPTS);
    expect(blocks(r.text, 'DISK')).toEqual([
      '[\n  DEV_PREFIX = "vd",\n  IMAGE_ID = "100" ]',
      '[\n  IMAGE_ID = "101",\n  CACHE = "none" ]',
      '[\n  SIZE = "512",\n  TYPE = "fs" ]',
      '[\n  IMAGE_ID = "9" ]',
      '[\n  IMAGE_ID = "11" ]',
    ]);
    expect(r.keptDisks).toEqual([{ diskId: 5, imageId: '11' }]);
  });

  it('a volatile disk the backup holds becomes an image disk', () => {
    const r = restoreVmTemplate(vm, new Map([...RESTORED, [2, 102]]), OPTS);
    expect(blocks(r.text, 'DISK')[2]).toBe('[\n  IMAGE_ID = "102" ]');
  });

  it('NICs keep their network and one address, not their lease placement', () => {
    expect(blocks(restoreVmTemplate(vm, RESTORED, OPTS).text, 'NIC')).toEqual([
      '[\n  IP = "10.0.0.5",\n  MODEL = "virtio",\n  NETWORK = "private" ]',
      '[\n  IP6 = "fd00::9",\n  NETWORK = "v6" ]',
    ]);
  });

  it('NO_IP drops the addresses, NO_NIC the NICs and their aliases', () => {
    const alias = readBackupVm(
      b64(
        vmXml('', '<NIC_ALIAS><IP>10.0.0.9</IP><NETWORK>private</NETWORK><PARENT>NIC0</PARENT></NIC_ALIAS>'),
      ),
      'vm.xml',
    );
    const noIp = restoreVmTemplate(alias, RESTORED, { ...OPTS, noIp: true }).text;
    expect(blocks(noIp, 'NIC')).toEqual([
      '[\n  MODEL = "virtio",\n  NETWORK = "private" ]',
      '[\n  NETWORK = "v6" ]',
    ]);
    expect(blocks(noIp, 'NIC_ALIAS')).toEqual(['[\n  NETWORK = "private",\n  PARENT = "NIC0" ]']);
    const noNic = restoreVmTemplate(alias, RESTORED, { ...OPTS, noNic: true }).text;
    expect(noNic).not.toMatch(/^NIC/m);
  });

  it('leaves out a value the template syntax cannot carry, and says so', () => {
    const odd = readBackupVm(b64(vmXml(cd('PATHISH', 'C:\\dir\\') + cd('LOGO', 'a]]>b'))), 'vm.xml');
    const r = restoreVmTemplate(odd, RESTORED, OPTS);
    expect(r.dropped.sort()).toEqual(['LOGO', 'PATHISH']);
    expect(r.text).not.toMatch(/PATHISH|LOGO/);
  });

  it('does not change the VM it was given (a retry renders the same)', () => {
    const first = restoreVmTemplate(vm, RESTORED, OPTS).text;
    expect(restoreVmTemplate(vm, RESTORED, OPTS).text).toBe(first);
  });
});

describe('renderTemplate', () => {
  it('writes single and vector attributes and skips empty ones', () => {
    const t = new Map<string, Array<string | Map<string, string>>>([
      ['CPU', ['1']],
      ['EMPTY', ['']],
      ['DISK', [new Map([['IMAGE_ID', '3']]), new Map()]],
    ]);
    expect(renderTemplate(t).text).toBe('CPU = "1"\nDISK = [\n  IMAGE_ID = "3" ]\n');
  });
});
