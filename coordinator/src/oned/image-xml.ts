import { parseXmlRoot } from './xml-element.js';

/** /IMAGE/TYPE values (include/Image.h ImageType). */
export const ImageType = {
  Os: 0,
  Cdrom: 1,
  Datablock: 2,
  Kernel: 3,
  Ramdisk: 4,
  Context: 5,
  Backup: 6,
} as const;
export type ImageType = (typeof ImageType)[keyof typeof ImageType];

/** oned writes the image's PERSISTENT flag as 0/1 (a DISK's PERSISTENT is YES/NO instead). */
const PERSISTENT_YES = '1';

/** The parts of oned's <IMAGE> document the drivers read. */
export interface ImageInfo {
  id: number;
  name: string;
  /** Where the image lives in its datastore; empty until the DS driver's cp has answered. */
  source: string;
  format: string;
  /** Virtual size in MiB. */
  size: number;
  persistent: boolean;
  type: number;
  datastoreId: number;
  /** /IMAGE/TEMPLATE children: DEV_PREFIX, MD5, SHA1, ... */
  template: Readonly<Record<string, string>>;
}

/** @param expectedId the id that was asked for: errors name it, and a document for another one is refused. */
export function parseImage(xml: string, expectedId?: number): ImageInfo {
  const owner = expectedId === undefined ? 'image' : `image ${expectedId}`;
  const root = parseXmlRoot(xml, 'IMAGE', owner);
  const id = root.requireInt('ID');
  if (expectedId !== undefined && id !== expectedId) {
    throw new Error(`${owner} XML describes image ${id}`);
  }
  const image = root.withOwner(`image ${id}`);
  return {
    id,
    name: image.requireText('NAME'),
    source: image.text('SOURCE') ?? '',
    format: image.text('FORMAT') ?? '',
    size: image.requireInt('SIZE'),
    persistent: image.text('PERSISTENT') === PERSISTENT_YES,
    type: image.requireInt('TYPE'),
    datastoreId: image.requireInt('DATASTORE_ID'),
    template: image.child('TEMPLATE')?.record() ?? {},
  };
}
