/**
 * The VM template a backup restore registers (docs/backups.md#the-restore-action): the VM's TEMPLATE and
 * USER_TEMPLATE from the backup's vm.xml, merged, with what belonged to the old VM stripped the way
 * OpenNebula's rsync driver strips it (ids, placement, addresses, the old disks' images), the
 * restored disks pointing at their new images, and rendered in oned's template syntax.
 */
import { StorageError } from '../../../../common/src/errors.js';
import { attributeLists, stripNicAddresses, type AttrMatcher } from './restore-attributes.js';
import { parseXmlTree, whyMalformed } from '../../oned/xml-element.js';

/** A single attribute's text, or a vector attribute's children (only their text ones count). */
export type AttrValue = string | Map<string, string>;
/** A template: attribute name → its values in document order (a name can repeat: DISK, NIC). */
export type TemplateAttrs = Map<string, AttrValue[]>;

export interface BackupVm {
  id: number;
  template: TemplateAttrs;
}

export interface RestoreTemplateOptions {
  /** The template's NAME. */
  name: string;
  /** NO_NIC=YES: the template gets no NIC at all. */
  noNic: boolean;
  /** NO_IP=YES: the NICs keep no IP, IP6 or MAC (oned leases new ones). */
  noIp: boolean;
  /** The backup's vTPM state archive (disk.tpm.0), put in the template as TPM_STATE (base64). */
  tpmState?: Uint8Array;
}

export interface RestoreTemplate {
  text: string;
  /** Disks that were not in the backup and keep their original image (what was kept, per disk). */
  keptDisks: Array<{ diskId: number; imageId: string | undefined }>;
  /** Attributes left out because oned's template syntax cannot carry their value. */
  dropped: string[];
}

type XmlTree = string | { [name: string]: XmlTree } | XmlTree[];

const UINT = /^(0|[1-9]\d{0,9})$/;
/** DISK TYPEs of volatile disks: they are re-created empty unless the backup holds them. */
const VOLATILE = new Set(['FS', 'SWAP']);
/** DISK TYPEs that keep their original image (never backed up). */
const CDROM = new Set(['CDROM', 'RBD_CDROM']);

/**
 * Decodes vm.xml as prebackup stores it (base64 of the <VM> document) and reads the VM's id and its
 * TEMPLATE merged with USER_TEMPLATE (a USER_TEMPLATE attribute replaces the TEMPLATE one of the same
 * name in its place, as a Ruby Hash merge does). `where` names the file in errors.
 */
export function readBackupVm(vmXmlBase64: string, where: string): BackupVm {
  const bad = (why: string): StorageError => new StorageError('BAD_IMAGE', `${where}: ${why}`);
  const xml = decodeBackupVmXml(vmXmlBase64, where);
  const vm = (parseXmlTree(xml) as Record<string, XmlTree>)['VM'];
  if (vm === undefined || typeof vm !== 'object' || Array.isArray(vm)) throw bad('has no /VM element');
  const id = vm['ID'];
  if (typeof id !== 'string' || !UINT.test(id)) throw bad('has no /VM/ID');
  const template = attrsOf(vm['TEMPLATE']);
  for (const [name, values] of attrsOf(vm['USER_TEMPLATE'])) template.set(name, values);
  return { id: Number(id), template };
}

/**
 * vm.xml's text as prebackup stores it (base64 of the <VM> document, wrapped in lines) decoded to
 * XML that is well-formed; BAD_IMAGE naming `where` otherwise.
 */
export function decodeBackupVmXml(vmXmlBase64: string, where: string): string {
  const bad = (why: string): StorageError => new StorageError('BAD_IMAGE', `${where}: ${why}`);
  const text = vmXmlBase64.replace(/\s+/g, '');
  if (text === '' || !/^[A-Za-z0-9+/]+=*$/.test(text)) throw bad('is not base64 text');
  const xml = Buffer.from(text, 'base64').toString('utf8');
  const invalid = whyMalformed(xml);
  if (invalid !== undefined) throw bad(`does not hold a VM document: ${invalid}`);
  return xml;
}

/**
 * The restored VM's template text. `imageIds` maps each restored disk's DISK_ID to its new image.
 * A disk the backup does not hold keeps its original IMAGE_ID (reported in keptDisks); a volatile
 * one is re-created empty (TYPE and SIZE kept).
 */
export function restoreVmTemplate(
  vm: BackupVm,
  imageIds: ReadonlyMap<number, number>,
  opts: RestoreTemplateOptions,
): RestoreTemplate {
  const t: TemplateAttrs = new Map([...vm.template].map(([k, v]) => [k, v.map(copy)]));
  const lists = attributeLists(opts.noIp);
  const strip = (name: string, matchers: readonly AttrMatcher[]): void => {
    for (const v of t.get(name) ?? []) if (typeof v !== 'string') removeMatching(v, matchers);
  };
  strip('DISK', lists.disk);
  for (const name of [...t.keys()]) if (matches(name, lists.vm)) t.delete(name);
  strip('CONTEXT', lists.context);
  strip('GRAPHICS', lists.graphics);
  strip('NUMA_NODE', lists.numaNode);
  strip('OS', lists.os);
  strip('PCI', lists.pci);

  const keptDisks: RestoreTemplate['keptDisks'] = [];
  for (const disk of t.get('DISK') ?? []) {
    if (typeof disk === 'string') continue;
    const idText = disk.get('DISK_ID');
    if (idText === undefined || !UINT.test(idText)) continue;
    const diskId = Number(idText);
    const type = (disk.get('TYPE') ?? '').toUpperCase();
    const imageId = imageIds.get(diskId);
    disk.delete('DISK_ID');
    if (VOLATILE.has(type)) {
      disk.delete('IMAGE_ID');
      if (imageId === undefined) continue;
    }
    disk.delete('TYPE');
    disk.delete('SIZE');
    if (CDROM.has(type)) continue;
    if (imageId === undefined) keptDisks.push({ diskId, imageId: disk.get('IMAGE_ID') });
    else disk.set('IMAGE_ID', String(imageId));
  }

  for (const name of ['NIC', 'NIC_ALIAS']) {
    if (opts.noNic) {
      t.delete(name);
      continue;
    }
    strip(name, lists.nic);
    for (const nic of t.get(name) ?? []) if (typeof nic !== 'string') stripNicAddresses(nic);
  }

  t.set('NAME', [opts.name]);
  if (opts.tpmState !== undefined && opts.tpmState.length > 0)
    t.set('TPM_STATE', [Buffer.from(opts.tpmState).toString('base64')]);
  return { ...renderTemplate(t), keptDisks };
}

/** oned's template syntax: `NAME = "value"` and `NAME = [ A = "x", B = "y" ]`, empties left out. */
export function renderTemplate(t: TemplateAttrs): { text: string; dropped: string[] } {
  const dropped: string[] = [];
  const quote = (where: string, value: string): string | undefined => {
    // The lexer takes `\"` as an escaped quote, so a trailing backslash would swallow the closing
    // quote; `]]>` ends a CDATA value. Neither can be written.
    if (value.endsWith('\\') || value.includes(']]>')) {
      dropped.push(where);
      return undefined;
    }
    return `"${value.replace(/"/g, '\\"')}"`;
  };
  const lines: string[] = [];
  for (const [name, values] of t) {
    for (const value of values) {
      if (typeof value === 'string') {
        const q = value === '' ? undefined : quote(name, value);
        if (q !== undefined) lines.push(`${name} = ${q}`);
        continue;
      }
      const inner = [...value].flatMap(([k, v]) => {
        const q = v === '' ? undefined : quote(`${name}/${k}`, v);
        return q === undefined ? [] : [`  ${k} = ${q}`];
      });
      if (inner.length > 0) lines.push(`${name} = [\n${inner.join(',\n')} ]`);
    }
  }
  return { text: `${lines.join('\n')}\n`, dropped };
}

function attrsOf(node: XmlTree | undefined): TemplateAttrs {
  const out: TemplateAttrs = new Map();
  if (node === undefined || typeof node !== 'object' || Array.isArray(node)) return out;
  for (const [name, raw] of Object.entries(node)) {
    if (name === '#text') continue;
    const values = (Array.isArray(raw) ? raw : [raw]).flatMap((v): AttrValue[] => {
      if (typeof v === 'string') return [v];
      if (Array.isArray(v)) return [];
      // A vector attribute: its text children (oned's vectors hold no deeper nesting).
      const vector = new Map<string, string>();
      for (const [k, child] of Object.entries(v)) {
        const first = Array.isArray(child) ? child[0] : child;
        if (typeof first === 'string' && k !== '#text') vector.set(k, first);
      }
      return [vector];
    });
    if (values.length > 0) out.set(name, values);
  }
  return out;
}

function removeMatching(vector: Map<string, string>, matchers: readonly AttrMatcher[]): void {
  for (const k of [...vector.keys()]) if (matches(k, matchers)) vector.delete(k);
}

function matches(name: string, matchers: readonly AttrMatcher[]): boolean {
  return matchers.some((m) => (typeof m === 'string' ? m === name : m.test(name)));
}

function copy(v: AttrValue): AttrValue {
  return typeof v === 'string' ? v : new Map(v);
}
