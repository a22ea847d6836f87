import { describe, expect, it } from 'vitest';
import { ImageType, parseImage } from './image-xml.js';

const image = (persistent: string, extra = ''): string =>
  `<IMAGE><ID>7</ID><UID>0</UID><NAME>ubuntu</NAME><TYPE>0</TYPE><DISK_TYPE>0</DISK_TYPE>
   <PERSISTENT>${persistent}</PERSISTENT><SOURCE><![CDATA[/var/lib/one//datastores/1/9f3c0e0c2b0d4b1a]]></SOURCE>
   <PATH><![CDATA[https://example.org/ubuntu.qcow2]]></PATH><FORMAT>qcow2</FORMAT><FS></FS><SIZE>2048</SIZE>
   <STATE>1</STATE>${extra}<DATASTORE_ID>1</DATASTORE_ID><DATASTORE>default</DATASTORE>
   <TEMPLATE><DEV_PREFIX><![CDATA[vd]]></DEV_PREFIX><MD5><![CDATA[0123abcd]]></MD5></TEMPLATE></IMAGE>`;

describe('parseImage', () => {
  it.each([
    ['1', true],
    ['0', false],
  ])('PERSISTENT %s reads as %s', (flag, persistent) => {
    expect(parseImage(image(flag), 7)).toEqual({
      id: 7,
      name: 'ubuntu',
      source: '/var/lib/one//datastores/1/9f3c0e0c2b0d4b1a',
      format: 'qcow2',
      size: 2048,
      persistent,
      type: ImageType.Os,
      datastoreId: 1,
      template: { DEV_PREFIX: 'vd', MD5: '0123abcd' },
    });
  });

  it.each([
    ['no SIZE', '<IMAGE><ID>7</ID><NAME>i</NAME></IMAGE>', 'image 7 XML has no /IMAGE/SIZE'],
    [
      'bad SIZE',
      '<IMAGE><ID>7</ID><NAME>i</NAME><SIZE>-</SIZE></IMAGE>',
      'image 7 XML /IMAGE/SIZE is not an integer: "-"',
    ],
    ['not XML', 'ERROR: no such image', 'image 7 XML is malformed'],
  ])('%s', (_name, xml, message) => {
    expect(() => parseImage(xml, 7)).toThrow(message);
  });
});
