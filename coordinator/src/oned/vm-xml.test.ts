import { describe, expect, it } from 'vitest';
import { LcmState, VmState } from './vm-state.js';
import { parseVm } from './vm-xml.js';

// Reference 5.3, as oned serialises it: plain text for the VM's own fields, CDATA for every template
// value, two image/volatile disks, a context CD, two history records, one disk's snapshots, backups.
const VM_42 = `<?xml version="1.0"?>
<VM><ID>42</ID><UID>0</UID><GID>0</GID><NAME>vm42</NAME><STATE>3</STATE><LCM_STATE>4</LCM_STATE>
 <DEPLOY_ID>one-42</DEPLOY_ID>
 <TEMPLATE>
  <CPU><![CDATA[1]]></CPU>
  <DISK><ALLOW_ORPHANS><![CDATA[FORMAT]]></ALLOW_ORPHANS><CLONE><![CDATA[YES]]></CLONE><CLONE_TARGET><![CDATA[SYSTEM]]></CLONE_TARGET>
   <DATASTORE><![CDATA[default]]></DATASTORE><DATASTORE_ID><![CDATA[1]]></DATASTORE_ID><DISK_ID><![CDATA[0]]></DISK_ID><DISK_TYPE><![CDATA[FILE]]></DISK_TYPE>
   <DRIVER><![CDATA[qcow2]]></DRIVER><FORMAT><![CDATA[qcow2]]></FORMAT><IMAGE_ID><![CDATA[7]]></IMAGE_ID><LN_TARGET><![CDATA[SYSTEM]]></LN_TARGET>
   <ORIGINAL_SIZE><![CDATA[2048]]></ORIGINAL_SIZE><SIZE><![CDATA[10240]]></SIZE><SAVE><![CDATA[NO]]></SAVE><SPARSE><![CDATA[no]]></SPARSE>
   <SOURCE><![CDATA[/var/lib/one//datastores/1/9f3c0e0c2b0d4b1a]]></SOURCE><TARGET><![CDATA[vda]]></TARGET><TM_MAD><![CDATA[qcow2]]></TM_MAD>
   <TM_MAD_SYSTEM><![CDATA[ssh]]></TM_MAD_SYSTEM><TYPE><![CDATA[FILE]]></TYPE></DISK>
  <DISK><DISK_ID><![CDATA[1]]></DISK_ID><TYPE><![CDATA[swap]]></TYPE><SIZE><![CDATA[1024]]></SIZE><TARGET><![CDATA[vdb]]></TARGET></DISK>
  <CONTEXT><DISK_ID><![CDATA[2]]></DISK_ID><TARGET><![CDATA[hda]]></TARGET></CONTEXT><TM_MAD_SYSTEM><![CDATA[ssh]]></TM_MAD_SYSTEM>
 </TEMPLATE><USER_TEMPLATE/>
 <HISTORY_RECORDS><HISTORY><OID>42</OID><SEQ>0</SEQ><HOSTNAME>host01</HOSTNAME><HID>1</HID><DS_ID>100</DS_ID>
   <VM_MAD>kvm</VM_MAD><TM_MAD>ssh</TM_MAD><ACTION>0</ACTION></HISTORY>
  <HISTORY><OID>42</OID><SEQ>1</SEQ><HOSTNAME>host02</HOSTNAME><HID>2</HID><DS_ID>101</DS_ID><VM_MAD>kvm</VM_MAD><TM_MAD>ssh</TM_MAD><ACTION>0</ACTION></HISTORY></HISTORY_RECORDS>
 <SNAPSHOTS><ALLOW_ORPHANS><![CDATA[FORMAT]]></ALLOW_ORPHANS><CURRENT_BASE><![CDATA[-1]]></CURRENT_BASE><DISK_ID><![CDATA[0]]></DISK_ID><NEXT_SNAPSHOT><![CDATA[2]]></NEXT_SNAPSHOT>
  <SNAPSHOT><DATE><![CDATA[1700000000]]></DATE><ID><![CDATA[0]]></ID><NAME><![CDATA[before upgrade]]></NAME><PARENT><![CDATA[-1]]></PARENT><SIZE><![CDATA[10240]]></SIZE></SNAPSHOT>
  <SNAPSHOT><ACTIVE><![CDATA[YES]]></ACTIVE><ID><![CDATA[1]]></ID><PARENT><![CDATA[0]]></PARENT><SIZE><![CDATA[10240]]></SIZE></SNAPSHOT></SNAPSHOTS>
 <BACKUPS><BACKUP_CONFIG><MODE><![CDATA[INCREMENT]]></MODE><INCREMENT_MODE><![CDATA[CBT]]></INCREMENT_MODE><FS_FREEZE><![CDATA[AGENT]]></FS_FREEZE>
   <KEEP_LAST><![CDATA[4]]></KEEP_LAST><LAST_INCREMENT_ID><![CDATA[2]]></LAST_INCREMENT_ID><LAST_DATASTORE_ID><![CDATA[101]]></LAST_DATASTORE_ID></BACKUP_CONFIG>
  <BACKUP_IDS><ID>55</ID><ID>56</ID></BACKUP_IDS></BACKUPS></VM>`;

/** A freshly created VM: one disk, no history yet, no snapshots, empty backups. */
const VM_7_SINGLE_DISK = `<VM><ID>7</ID><NAME>web &amp; db</NAME><STATE>1</STATE><LCM_STATE>0</LCM_STATE><DEPLOY_ID></DEPLOY_ID>
<TEMPLATE><DISK><DISK_ID><![CDATA[0]]></DISK_ID><IMAGE_ID><![CDATA[3]]></IMAGE_ID><PERSISTENT><![CDATA[YES]]></PERSISTENT>
<SAVE><![CDATA[YES]]></SAVE><CLONE><![CDATA[NO]]></CLONE><SOURCE><![CDATA[/var/lib/one//datastores/1/a<b>&c]]></SOURCE>
<QCOW2_STANDALONE><![CDATA[yes]]></QCOW2_STANDALONE></DISK></TEMPLATE>
<HISTORY_RECORDS/><BACKUPS><BACKUP_CONFIG/><BACKUP_IDS/></BACKUPS></VM>`;

describe('parseVm', () => {
  it('reads the reference VM (5.3): identity and state', () => {
    const vm = parseVm(VM_42, 42);
    expect(vm).toMatchObject({
      id: 42,
      name: 'vm42',
      deployId: 'one-42',
      contextDiskId: 2,
      tmMadSystem: 'ssh',
    });
    expect(vm.state).toBe(VmState.Active);
    expect(vm.lcmState).toBe(LcmState.Migrate);
    expect(vm.template['CPU']).toBe('1');
    expect(vm.template['DISK']).toBeUndefined();
  });

  it('reads every DISK, with typed getters and the raw attributes', () => {
    const vm = parseVm(VM_42);
    expect(vm.disks.map((d) => d.diskId)).toEqual([0, 1]);
    const d0 = vm.disk(0);
    expect(d0).toBeDefined();
    expect({
      size: d0?.size,
      originalSize: d0?.originalSize,
      sparse: d0?.sparse,
      format: d0?.format,
      source: d0?.source,
      clone: d0?.clone,
      tmMad: d0?.tmMad,
      tmMadSystem: d0?.tmMadSystem,
      type: d0?.type,
      target: d0?.target,
      datastoreId: d0?.datastoreId,
      imageId: d0?.imageId,
      save: d0?.save,
      persistent: d0?.persistent,
      qcow2Standalone: d0?.qcow2Standalone,
      isVolatile: d0?.isVolatile,
    }).toEqual({
      size: 10240,
      originalSize: 2048,
      sparse: false,
      format: 'qcow2',
      source: '/var/lib/one//datastores/1/9f3c0e0c2b0d4b1a',
      clone: true,
      tmMad: 'qcow2',
      tmMadSystem: 'ssh',
      type: 'FILE',
      target: 'vda',
      datastoreId: 1,
      imageId: 7,
      save: false,
      persistent: undefined,
      qcow2Standalone: undefined,
      isVolatile: false,
    });
    expect(d0?.get('CLONE_TARGET')).toBe('SYSTEM');
    const swap = vm.disk(1);
    expect(swap?.attrs).toEqual({ DISK_ID: '1', TYPE: 'swap', SIZE: '1024', TARGET: 'vdb' });
    expect(swap?.isVolatile).toBe(true);
    expect(vm.disk(9)).toBeUndefined();
  });

  it('reads history in SEQ order with last and previous records', () => {
    const vm = parseVm(VM_42);
    expect(vm.history.map((h) => h.hostname)).toEqual(['host01', 'host02']);
    expect(vm.lastHistory).toEqual({
      seq: 1,
      hostname: 'host02',
      hostId: 2,
      dsId: 101,
      tmMad: 'ssh',
      vmMad: 'kvm',
      action: 0,
    });
    expect(vm.previousHistory?.dsId).toBe(100);
  });

  it('reads snapshots per disk and the backup config', () => {
    const vm = parseVm(VM_42);
    expect(vm.diskSnapshots(0)).toEqual({
      diskId: 0,
      currentBase: -1,
      nextSnapshot: 2,
      snapshots: [
        { id: 0, active: false, parent: -1, size: 10240, name: 'before upgrade' },
        { id: 1, active: true, parent: 0, size: 10240, name: undefined },
      ],
    });
    expect(vm.diskSnapshots(1)).toBeUndefined();
    expect(vm.backupConfig).toMatchObject({ MODE: 'INCREMENT', KEEP_LAST: '4', LAST_DATASTORE_ID: '101' });
    expect(vm.backupIds).toEqual([55, 56]);
  });

  it('gives an array for a single DISK, and copes with no history, snapshots nor backups', () => {
    const vm = parseVm(VM_7_SINGLE_DISK, 7);
    expect(vm.name).toBe('web & db');
    expect(vm.deployId).toBe('');
    expect(vm.disks).toHaveLength(1);
    const d = vm.disks[0];
    expect([d?.persistent, d?.save, d?.clone, d?.qcow2Standalone]).toEqual([true, true, false, true]);
    expect(d?.source).toBe('/var/lib/one//datastores/1/a<b>&c');
    expect([d?.size, d?.format, d?.sparse]).toEqual([undefined, undefined, undefined]);
    expect(vm.history).toEqual([]);
    expect(vm.lastHistory).toBeUndefined();
    expect(vm.previousHistory).toBeUndefined();
    expect(vm.snapshots).toEqual([]);
    expect(vm.backupConfig).toEqual({});
    expect(vm.backupIds).toEqual([]);
    expect(vm.contextDiskId).toBeUndefined();
    expect(vm.tmMadSystem).toBeUndefined();
  });

  it('handles a VM without TEMPLATE and a single HISTORY', () => {
    const vm = parseVm(
      `<VM><ID>3</ID><NAME>x</NAME><STATE>3</STATE><LCM_STATE>3</LCM_STATE><HISTORY_RECORDS><HISTORY><SEQ>0</SEQ>
       <HOSTNAME>h</HOSTNAME><DS_ID>0</DS_ID><TM_MAD>shared</TM_MAD><VM_MAD>kvm</VM_MAD></HISTORY></HISTORY_RECORDS></VM>`,
    );
    expect(vm.disks).toEqual([]);
    expect(vm.lastHistory?.tmMad).toBe('shared');
    expect(vm.lastHistory?.hostId).toBeUndefined();
  });

  const base = (inner: string): string => `<VM><ID>42</ID>${inner}</VM>`;
  const ok = '<NAME>v</NAME><STATE>3</STATE><LCM_STATE>3</LCM_STATE>';
  it.each([
    ['no ID', '<VM><NAME>v</NAME></VM>', 42, 'VM 42 XML has no /VM/ID'],
    ['no ID, id unknown', '<VM><NAME>v</NAME></VM>', undefined, 'VM XML has no /VM/ID'],
    ['empty ID', '<VM><ID></ID></VM>', 42, 'VM 42 XML has no /VM/ID'],
    ['no NAME', base('<STATE>3</STATE><LCM_STATE>3</LCM_STATE>'), 42, 'VM 42 XML has no /VM/NAME'],
    ['no LCM_STATE', base('<NAME>v</NAME><STATE>3</STATE>'), 42, 'VM 42 XML has no /VM/LCM_STATE'],
    [
      'non-numeric STATE',
      base('<NAME>v</NAME><STATE>ACTIVE</STATE>'),
      42,
      'VM 42 XML /VM/STATE is not an integer: "ACTIVE"',
    ],
    ['another VM', '<VM><ID>43</ID></VM>', 42, 'VM 42 XML describes VM 43'],
    ['wrong root', '<IMAGE><ID>42</ID></IMAGE>', 42, 'VM 42 XML has no /VM root element'],
    ['empty document', '', 42, 'VM 42 XML is malformed: Start tag expected. (line 1)'],
    ['unclosed tag', '<VM><ID>42</ID>', 42, "VM 42 XML is malformed: Unclosed tag 'VM'. (line 1)"],
    ['mismatched tag', '<VM><ID>42</IDX></VM>', 42, "VM 42 XML is malformed: Expected closing tag 'ID'"],
    [
      'DISK without DISK_ID',
      base(`${ok}<TEMPLATE><DISK><DISK_ID>0</DISK_ID></DISK><DISK><SIZE>1</SIZE></DISK></TEMPLATE>`),
      42,
      'VM 42 XML has no /VM/TEMPLATE/DISK[2]/DISK_ID',
    ],
    [
      'HISTORY without DS_ID',
      base(`${ok}<HISTORY_RECORDS><HISTORY><SEQ>0</SEQ><HOSTNAME>h</HOSTNAME></HISTORY></HISTORY_RECORDS>`),
      42,
      'VM 42 XML has no /VM/HISTORY_RECORDS/HISTORY/DS_ID',
    ],
    [
      'bad BACKUP_IDS',
      base(`${ok}<BACKUPS><BACKUP_IDS><ID>1</ID><ID>x</ID></BACKUP_IDS></BACKUPS>`),
      42,
      'VM 42 XML /VM/BACKUPS/BACKUP_IDS/ID[2] is not an integer: "x"',
    ],
  ])('%s gives a one-line error naming the element', (_name, xml, id, message) => {
    expect(() => parseVm(xml, id)).toThrow(message);
    try {
      parseVm(xml, id);
    } catch (err) {
      expect((err as Error).message).not.toContain('\n');
    }
  });

  it.each([
    ['SIZE', 'big', 'size', 'VM 42 DISK 0 SIZE is not an integer: "big"'],
    ['DATASTORE_ID', '1.5', 'datastoreId', 'VM 42 DISK 0 DATASTORE_ID is not an integer: "1.5"'],
    ['CLONE', 'maybe', 'clone', 'VM 42 DISK 0 CLONE is neither YES nor NO: "maybe"'],
  ] as const)('a DISK %s of %j fails only when read', (attr, value, getter, message) => {
    const vm = parseVm(
      `<VM><ID>42</ID>${ok}<TEMPLATE><DISK><DISK_ID>0</DISK_ID><${attr}>${value}</${attr}></DISK></TEMPLATE></VM>`,
    );
    const disk = vm.disk(0);
    expect(disk?.get(attr)).toBe(value);
    expect(() => disk?.[getter]).toThrow(message);
  });
});
