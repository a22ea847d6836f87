import { StorageError } from '../errors.js';

/**
 * A tiny validator for config objects: each getter checks one key and names it in the error, so a
 * bad setting fails at start-up with the exact key ("agents.host01.endpoint: must be host:port").
 */
export class Fields {
  private readonly seen = new Set<string>();

  constructor(
    private readonly source: string,
    private readonly path: string,
    private readonly value: Record<string, unknown>,
  ) {}

  static root(source: string, value: unknown): Fields {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new StorageError('CONFIG_INVALID', `config ${source}: must be a mapping of settings`);
    }
    return new Fields(source, '', value as Record<string, unknown>);
  }

  fail(key: string, why: string): never {
    throw new StorageError('CONFIG_INVALID', `config ${this.source}: ${this.keyPath(key)}: ${why}`);
  }

  keyPath(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  private raw(key: string): unknown {
    this.seen.add(key);
    return this.value[key];
  }

  has(key: string): boolean {
    return this.value[key] !== undefined;
  }

  string(key: string, fallback?: string): string {
    const v = this.raw(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'string' || v.length === 0) this.fail(key, 'must be a non-empty string');
    return v;
  }

  optionalString(key: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v.length === 0) this.fail(key, 'must be a non-empty string');
    return v;
  }

  int(key: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(key, `must be an integer between ${min} and ${max}`);
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'must be true or false');
    return v;
  }

  absolutePath(key: string, fallback?: string): string {
    const v = this.string(key, fallback);
    if (!v.startsWith('/')) this.fail(key, 'must be an absolute path');
    return v;
  }

  /** host:port with a numeric port (port 0 allowed: listen on any free port). */
  address(key: string, fallback?: string): string {
    const v = this.string(key, fallback);
    const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
    if (!m || Number(m[2]) > 65535) this.fail(key, `must be host:port, got "${v}"`);
    return v;
  }

  stringList(key: string, fallback: string[] = []): string[] {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x.length > 0)) {
      this.fail(key, 'must be a list of non-empty strings');
    }
    return v as string[];
  }

  object(key: string, required = true): Fields | undefined {
    const v = this.raw(key);
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'must be a mapping');
    return new Fields(this.source, this.keyPath(key), v as Record<string, unknown>);
  }

  /** A mapping whose keys are names (e.g. hostnames) and whose values are mappings. */
  entries(key: string): Array<[string, Fields]> {
    const f = this.object(key);
    if (!f) return [];
    return Object.keys(f.value).map((name) => [name, f.object(name) as Fields]);
  }

  list(key: string, required = true): Fields[] {
    const v = this.raw(key);
    if (v === undefined && !required) return [];
    if (!Array.isArray(v) || v.length === 0) this.fail(key, 'must be a non-empty list');
    return v.map((item, i) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        this.fail(`${key}[${i}]`, 'must be a mapping');
      }
      return new Fields(this.source, `${this.keyPath(key)}[${i}]`, item as Record<string, unknown>);
    });
  }

  /** Call after reading every key: an unknown key is a typo that would otherwise be ignored. */
  done(): void {
    for (const key of Object.keys(this.value)) {
      if (!this.seen.has(key)) this.fail(key, 'unknown setting');
    }
  }
}
