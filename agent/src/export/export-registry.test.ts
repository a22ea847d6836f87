import { describe, expect, it } from 'vitest';
import { type ExportedFile, ExportRegistry } from './export-registry.js';

function file(disposed: string[] = [], name = 'image.qcow2'): ExportedFile {
  return {
    path: '/ds/1/abc',
    identity: { dev: 1n, ino: 2n },
    size: 10,
    mtimeNs: 3n,
    md5: 'd41d8cd98f00b204e9800998ecf8427e',
    source: '/var/lib/one/datastores/1/abc',
    name,
    dispose: () => {
      disposed.push(name);
      return Promise.resolve();
    },
  };
}

describe('ExportRegistry', () => {
  it('issues 32-byte base64url tokens, finds each by its token only, and names it by a hash id', () => {
    const r = new ExportRegistry({ now: () => 0 });
    const a = r.add(file(), 60);
    const b = r.add(file(), 60);
    expect(a.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a.token, 'base64url')).toHaveLength(32);
    expect(a.token).not.toBe(b.token);
    expect(r.find(a.token)).toBe(a.entry);
    expect(r.find(b.token)).toBe(b.entry);
    expect(a.entry.id).toMatch(/^[0-9a-f]{12}$/);
    expect(a.token).not.toContain(a.entry.id);
    // One character changed, a prefix, a malformed token: not found, alike.
    const flipped = `${a.token.slice(0, -1)}${a.token.endsWith('A') ? 'B' : 'A'}`;
    for (const t of [flipped, a.token.slice(0, 42), `${a.token}A`, '', a.entry.id]) {
      expect(r.find(t)).toBeUndefined();
    }
  });

  it('refuses a token from its expiry on, by the injected clock, and disposes it once when swept', async () => {
    let now = 1_000;
    const disposed: string[] = [];
    const r = new ExportRegistry({ now: () => now });
    const short = r.add(file(disposed, 'short'), 10);
    const long = r.add(file(disposed, 'long'), 20);
    expect(short.entry.expiresAt).toBe(11_000);
    now = 10_999;
    expect(r.find(short.token)).toBeDefined();
    now = 11_000;
    expect(r.find(short.token)).toBeUndefined();
    expect(r.find(long.token)).toBeDefined();
    // Two sweeps at once dispose the expired entry once.
    expect(await Promise.all([r.sweep(), r.sweep()])).toEqual([1, 0]);
    expect(disposed).toEqual(['short']);
    expect(r.size).toBe(1);
  });

  it('ends every export on close, and reports a dispose that failed without stopping the others', async () => {
    const disposed: string[] = [];
    const failed: string[] = [];
    const r = new ExportRegistry({ now: () => 0, onDisposeError: (e) => failed.push(e.name) });
    const broken = { ...file([], 'broken'), dispose: () => Promise.reject(new Error('EBUSY')) };
    const a = r.add(file(disposed, 'a'), 60);
    r.add(broken, 60);
    await r.close();
    expect(disposed).toEqual(['a']);
    expect(failed).toEqual(['broken']);
    expect(r.find(a.token)).toBeUndefined();
    expect(r.size).toBe(0);
  });
});
