// Text-level helpers for writing oned-style XML in fixtures: plain escaped text for an object's own
// fields, CDATA for template values (as oned's Template::to_xml writes them).

export type Attrs = Readonly<Record<string, string | number>>;

export function sortedAttrs(attrs: Attrs): Attrs {
  return Object.fromEntries(Object.entries(attrs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function el(name: string, inner: string): string {
  return `<${name}>${inner}</${name}>`;
}

export function textAttrs(attrs: Attrs): string {
  return Object.entries(attrs)
    .map(([k, v]) => el(k, escapeText(String(v))))
    .join('');
}

export function cdataAttrs(attrs: Attrs): string {
  return Object.entries(attrs)
    .map(([k, v]) => el(k, cdata(String(v))))
    .join('');
}

export function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A CDATA section cannot hold "]]>", so that sequence is split across two sections. */
export function cdata(text: string): string {
  return `<![CDATA[${text.replace(/]]>/g, ']]]]><![CDATA[>')}]]>`;
}
