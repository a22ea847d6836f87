import { parseXmlRoot } from './xml-element.js';

/** /DATASTORE/TYPE values (include/Datastore.h DatastoreType). */
export const DatastoreType = {
  Image: 0,
  System: 1,
  File: 2,
  Backup: 3,
} as const;
export type DatastoreType = (typeof DatastoreType)[keyof typeof DatastoreType];

/** The parts of oned's <DATASTORE> document the drivers read. */
export interface DatastoreInfo {
  id: number;
  name: string;
  type: number;
  /** Empty for system datastores, which have no DS driver. */
  dsMad: string;
  tmMad: string;
  /** Where the datastore lives on every node, e.g. /var/lib/one//datastores/100 (oned keeps the //). */
  basePath: string;
  /** /DATASTORE/TEMPLATE children: BRIDGE_LIST, SPARSE, RESTRICTED_DIRS, SAFE_DIRS, ... */
  template: Readonly<Record<string, string>>;
}

/** @param expectedId the id that was asked for: errors name it, and a document for another one is refused. */
export function parseDatastore(xml: string, expectedId?: number): DatastoreInfo {
  const owner = expectedId === undefined ? 'datastore' : `datastore ${expectedId}`;
  const root = parseXmlRoot(xml, 'DATASTORE', owner);
  const id = root.requireInt('ID');
  if (expectedId !== undefined && id !== expectedId) {
    throw new Error(`${owner} XML describes datastore ${id}`);
  }
  const ds = root.withOwner(`datastore ${id}`);
  return {
    id,
    name: ds.requireText('NAME'),
    type: ds.requireInt('TYPE'),
    dsMad: ds.text('DS_MAD') ?? '',
    tmMad: ds.requireText('TM_MAD'),
    basePath: ds.requireText('BASE_PATH'),
    template: ds.child('TEMPLATE')?.record() ?? {},
  };
}
