import { describe, expect, it } from 'vitest';
import { DatastoreType, parseDatastore } from './datastore-xml.js';

const SYSTEM_DS = `<DATASTORE><ID>100</ID><UID>0</UID><GID>0</GID><NAME>system</NAME><DS_MAD><![CDATA[-]]></DS_MAD>
<TM_MAD><![CDATA[ssh]]></TM_MAD><BASE_PATH><![CDATA[/var/lib/one//datastores/100]]></BASE_PATH><TYPE>1</TYPE>
<DISK_TYPE>0</DISK_TYPE><CLUSTERS><ID>0</ID></CLUSTERS><TOTAL_MB>102400</TOTAL_MB>
<TEMPLATE><ALLOW_ORPHANS><![CDATA[YES]]></ALLOW_ORPHANS><BRIDGE_LIST><![CDATA[host01 host02]]></BRIDGE_LIST>
<SHARED><![CDATA[NO]]></SHARED><TM_MAD><![CDATA[ssh]]></TM_MAD><TYPE><![CDATA[SYSTEM_DS]]></TYPE></TEMPLATE></DATASTORE>`;

describe('parseDatastore', () => {
  it('reads the fields the drivers use, CDATA included', () => {
    expect(parseDatastore(SYSTEM_DS, 100)).toEqual({
      id: 100,
      name: 'system',
      type: DatastoreType.System,
      dsMad: '-',
      tmMad: 'ssh',
      basePath: '/var/lib/one//datastores/100',
      template: {
        ALLOW_ORPHANS: 'YES',
        BRIDGE_LIST: 'host01 host02',
        SHARED: 'NO',
        TM_MAD: 'ssh',
        TYPE: 'SYSTEM_DS',
      },
    });
  });

  it.each([
    [
      'no BASE_PATH',
      '<DATASTORE><ID>1</ID><NAME>d</NAME><TYPE>0</TYPE><TM_MAD>ssh</TM_MAD></DATASTORE>',
      1,
      'datastore 1 XML has no /DATASTORE/BASE_PATH',
    ],
    ['no ID', '<DATASTORE><NAME>d</NAME></DATASTORE>', 1, 'datastore 1 XML has no /DATASTORE/ID'],
    ['another datastore', '<DATASTORE><ID>2</ID></DATASTORE>', 1, 'datastore 1 XML describes datastore 2'],
    ['malformed', '<DATASTORE><ID>1</ID>', 1, 'datastore 1 XML is malformed'],
  ])('%s', (_name, xml, id, message) => {
    expect(() => parseDatastore(xml, id)).toThrow(message);
  });
});
