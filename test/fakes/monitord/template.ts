/**
 * OpenNebula's template syntax as monitord parses a payload (enough of it for monitoring messages):
 * `NAME = value`, `NAME = "quoted value"` and vectors `NAME = [ A = 1, B = "x" ]`, on one line or
 * spread over several, attributes separated by newlines or blanks. A repeated name collects values.
 */
export type TemplateValue = string | Readonly<Record<string, string>>;
export type Template = Readonly<Record<string, TemplateValue[]>>;

export function parseTemplate(text: string): Template {
  const out: Record<string, TemplateValue[]> = {};
  const p = new Parser(text);
  for (;;) {
    p.skipSeparators();
    if (p.atEnd()) return out;
    const name = p.name().toUpperCase();
    p.expect('=');
    p.skipBlanks();
    const value: TemplateValue = p.peek() === '[' ? p.vector() : p.scalar();
    (out[name] ??= []).push(value);
  }
}

/** The one scalar value of `name` (throws when absent or a vector). */
export function scalar(t: Template, name: string): string {
  const v = t[name]?.[0];
  if (typeof v !== 'string') throw new Error(`template has no scalar ${name}`);
  return v;
}

/** Every vector value of `name`. */
export function vectors(t: Template, name: string): Array<Readonly<Record<string, string>>> {
  return (t[name] ?? []).filter((v): v is Readonly<Record<string, string>> => typeof v !== 'string');
}

class Parser {
  private at = 0;
  constructor(private readonly s: string) {}

  atEnd(): boolean {
    return this.at >= this.s.length;
  }
  peek(): string {
    return this.s[this.at] ?? '';
  }
  skipBlanks(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.at++;
  }
  skipSeparators(): void {
    while (/[\s,]/.test(this.peek()) && !this.atEnd()) this.at++;
  }
  name(): string {
    this.skipSeparators();
    const m = /^[A-Za-z0-9_]+/.exec(this.s.slice(this.at));
    if (!m) throw new Error(`template: expected a name at offset ${this.at}: ${this.context()}`);
    this.at += m[0].length;
    return m[0];
  }
  expect(ch: string): void {
    this.skipSeparators();
    if (this.peek() !== ch)
      throw new Error(`template: expected "${ch}" at offset ${this.at}: ${this.context()}`);
    this.at++;
  }
  scalar(): string {
    if (this.peek() === '"') return this.quoted();
    const m = /^[^\s,\]]*/.exec(this.s.slice(this.at)) as RegExpExecArray;
    this.at += m[0].length;
    return m[0];
  }
  vector(): Record<string, string> {
    this.expect('[');
    const out: Record<string, string> = {};
    for (;;) {
      this.skipSeparators();
      if (this.peek() === ']') {
        this.at++;
        return out;
      }
      if (this.atEnd()) throw new Error('template: unterminated vector');
      const name = this.name().toUpperCase();
      this.expect('=');
      this.skipSeparators();
      out[name] = this.scalar();
    }
  }
  private quoted(): string {
    this.at++;
    let value = '';
    while (!this.atEnd() && this.peek() !== '"') {
      if (this.peek() === '\\' && this.s[this.at + 1] !== undefined) this.at++;
      value += this.peek();
      this.at++;
    }
    if (this.atEnd()) throw new Error('template: unterminated quoted value');
    this.at++;
    return value;
  }
  private context(): string {
    return JSON.stringify(this.s.slice(this.at, this.at + 30));
  }
}
