import { XMLParser, XMLValidator } from 'fast-xml-parser';

/** A parsed XML node as fast-xml-parser returns it with attributes ignored and values kept as text. */
export type XmlNode = string | XmlObject | XmlNode[];
export interface XmlObject {
  [name: string]: XmlNode;
}

/** Longest value quoted in an error message; oned values can be long template strings. */
const MAX_QUOTED_VALUE = 60;
const INTEGER = /^-?\d+$/;
/** Key fast-xml-parser uses for text mixed with child elements. */
const TEXT_KEY = '#text';

// oned's documents carry no attributes worth reading, and every value stays a string so that ids,
// sizes and flags are converted explicitly (and "007" or "1e3" never turn silently into numbers).
// CDATA sections (oned wraps every template value in one) merge into the element's text.
const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  htmlEntities: false,
});

/**
 * Validates and parses one oned document and returns its root element.
 * @param owner names the object in errors, e.g. "VM 42" or "VM" when the id is not known yet.
 */
export function parseXmlRoot(xml: string, rootName: string, owner: string): XmlElement {
  const invalid = whyMalformed(xml);
  if (invalid !== undefined) throw new Error(`${owner} XML is malformed: ${invalid}`);
  const doc = parseXmlTree(xml);
  const root = doc[rootName];
  if (root === undefined || Array.isArray(root)) {
    throw new Error(`${owner} XML has no /${rootName} root element`);
  }
  return new XmlElement(typeof root === 'string' ? {} : root, `/${rootName}`, owner);
}

/** Why `xml` is no well-formed document ("<message> (line N)"), or undefined when it is one. */
export function whyMalformed(xml: string): string | undefined {
  const valid = XMLValidator.validate(xml);
  return valid === true ? undefined : `${valid.err.msg} (line ${valid.err.line})`;
}

/**
 * A document checked with whyMalformed as fast-xml-parser's tree, read as every oned document is:
 * attributes ignored, every value kept as text.
 */
export function parseXmlTree(xml: string): XmlObject {
  return parser.parse(xml) as XmlObject;
}

/** Read access to one element, with errors that name the object and the XPath of what is missing. */
export class XmlElement {
  constructor(
    private readonly node: XmlObject,
    /** XPath of this element, e.g. "/VM/TEMPLATE/DISK[2]". */
    readonly path: string,
    /** The object the document describes, e.g. "VM 42". */
    readonly owner: string,
  ) {}

  /** The same element reported under another owner name (once the document's id is known). */
  withOwner(owner: string): XmlElement {
    return new XmlElement(this.node, this.path, owner);
  }

  /** Text of the first child element `name`, trimmed; undefined when there is none. */
  text(name: string): string | undefined {
    const first = firstOf(this.node[name]);
    if (first === undefined) return undefined;
    if (typeof first === 'string') return first.trim();
    const mixed = first[TEXT_KEY];
    return typeof mixed === 'string' ? mixed.trim() : '';
  }

  requireText(name: string): string {
    const value = this.text(name);
    if (value === undefined) throw this.missing(name);
    return value;
  }

  int(name: string): number | undefined {
    const value = this.text(name);
    if (value === undefined || value === '') return undefined;
    return this.toInt(name, value);
  }

  requireInt(name: string): number {
    const value = this.requireText(name);
    if (value === '') throw this.missing(name);
    return this.toInt(name, value);
  }

  /** The integer text of every child element `name` (e.g. the bare <ID>s of BACKUP_IDS). */
  ints(name: string): number[] {
    const value = this.node[name];
    if (value === undefined) return [];
    const list = Array.isArray(value) ? value : [value];
    return list.map((item, i) => {
      const text = typeof item === 'string' ? item.trim() : '';
      return this.toInt(list.length > 1 ? `${name}[${i + 1}]` : name, text);
    });
  }

  /** The first child element `name`; undefined when absent. */
  child(name: string): XmlElement | undefined {
    return this.children(name)[0];
  }

  /** Every child element `name`, in document order (one element and many both give an array). */
  children(name: string): XmlElement[] {
    const value = this.node[name];
    if (value === undefined) return [];
    const list = Array.isArray(value) ? value : [value];
    return list.map((item, i) => {
      const path = list.length > 1 ? `${this.path}/${name}[${i + 1}]` : `${this.path}/${name}`;
      // An empty element (<DISK/>) parses as "": it is present but has no children.
      return new XmlElement(typeof item === 'object' && !Array.isArray(item) ? item : {}, path, this.owner);
    });
  }

  /**
   * Every child element that holds text, as NAME -> value. Nested elements are left out; when a
   * name repeats, the first one wins (oned's single attributes never repeat).
   */
  record(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of Object.keys(this.node)) {
      if (name === TEXT_KEY) continue;
      const first = firstOf(this.node[name]);
      if (typeof first === 'string') out[name] = first.trim();
    }
    return out;
  }

  missing(name: string): Error {
    return new Error(`${this.owner} XML has no ${this.path}/${name}`);
  }

  private toInt(name: string, value: string): number {
    if (!INTEGER.test(value)) {
      throw new Error(`${this.owner} XML ${this.path}/${name} is not an integer: ${quote(value)}`);
    }
    return Number(value);
  }
}

/** Converts oned's text values, naming the attribute and object when the text does not fit. */
export function intValue(value: string | undefined, what: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!INTEGER.test(value)) throw new Error(`${what} is not an integer: ${quote(value)}`);
  return Number(value);
}

/** oned writes YES/NO; templates written by people may use any case. */
export function yesNoValue(value: string | undefined, what: string): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  const upper = value.toUpperCase();
  if (upper === 'YES') return true;
  if (upper === 'NO') return false;
  throw new Error(`${what} is neither YES nor NO: ${quote(value)}`);
}

function firstOf(value: XmlNode | undefined): string | XmlObject | undefined {
  let item = value;
  while (Array.isArray(item)) item = item[0];
  return item;
}

function quote(value: string): string {
  const short = value.length > MAX_QUOTED_VALUE ? `${value.slice(0, MAX_QUOTED_VALUE)}...` : value;
  return JSON.stringify(short);
}
