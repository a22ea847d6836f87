import { describe, expect, it } from 'vitest';
import { parseHost } from './host-xml.js';

describe('parseHost', () => {
  it('reads identity, drivers and the template', () => {
    const xml = `<HOST><ID>3</ID><NAME>host01</NAME><STATE>2</STATE><IM_MAD><![CDATA[kvm]]></IM_MAD>
      <VM_MAD><![CDATA[kvm]]></VM_MAD><TEMPLATE><REPLICA_STORAGE_IP><![CDATA[10.0.0.3]]></REPLICA_STORAGE_IP></TEMPLATE></HOST>`;
    expect(parseHost(xml, 3)).toEqual({
      id: 3,
      name: 'host01',
      state: 2,
      imMad: 'kvm',
      vmMad: 'kvm',
      template: { REPLICA_STORAGE_IP: '10.0.0.3' },
    });
  });

  it('names the missing element', () => {
    expect(() => parseHost('<HOST><ID>3</ID><STATE>2</STATE></HOST>', 3)).toThrow(
      'host 3 XML has no /HOST/NAME',
    );
  });
});
