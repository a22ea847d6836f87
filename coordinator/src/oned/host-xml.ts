import { parseXmlRoot } from './xml-element.js';

/** The parts of oned's <HOST> document the drivers read. */
export interface HostInfo {
  id: number;
  name: string;
  state: number;
  imMad: string;
  vmMad: string;
  /** /HOST/TEMPLATE children, e.g. REPLICA_STORAGE_IP (ssh replica mode). */
  template: Readonly<Record<string, string>>;
}

/** @param expectedId the id that was asked for: errors name it, and a document for another one is refused. */
export function parseHost(xml: string, expectedId?: number): HostInfo {
  const owner = expectedId === undefined ? 'host' : `host ${expectedId}`;
  const root = parseXmlRoot(xml, 'HOST', owner);
  const id = root.requireInt('ID');
  if (expectedId !== undefined && id !== expectedId) {
    throw new Error(`${owner} XML describes host ${id}`);
  }
  const host = root.withOwner(`host ${id}`);
  return {
    id,
    name: host.requireText('NAME'),
    state: host.requireInt('STATE'),
    imMad: host.text('IM_MAD') ?? '',
    vmMad: host.text('VM_MAD') ?? '',
    template: host.child('TEMPLATE')?.record() ?? {},
  };
}
