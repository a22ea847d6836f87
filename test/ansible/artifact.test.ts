// packaging/build-artifact.sh: the tarball holds dist/ and the production node_modules (the
// controller's native better-sqlite3 included), no devDependency, matches its manifest's sha256,
// and a rebuild of the same checkout leaves it untouched.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface Built {
  artifact: string;
  manifest: string;
  version: string;
  sha256: string;
  changed: boolean;
}
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { devDependencies: Record<string, string> };
const out = mkdtempSync(join(tmpdir(), 'artifact-test-'));
const build = (): Built => {
  const r = spawnSync(
    'bash',
    ['packaging/build-artifact.sh', '--source', '.', '--out', out, '--version', '9.9.9-test'],
    {
      encoding: 'utf8',
      timeout: 300_000,
    },
  );
  if (r.status !== 0) throw new Error(`build-artifact.sh failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Built;
};
let first: Built;
let entries: string[];

beforeAll(() => {
  first = build();
  entries = execFileSync('tar', ['-tzf', first.artifact], { encoding: 'utf8', maxBuffer: 64 << 20 }).split(
    '\n',
  );
}, 300_000);
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('the artifact', () => {
  it('unpacks to <version>/ with the three entry points and package.json', () => {
    expect(first.changed).toBe(true);
    for (const f of [
      'package.json',
      'dist/cli/src/main.js',
      'dist/agent/src/main.js',
      'dist/coordinator/src/main.js',
    ]) {
      expect(entries).toContain(`9.9.9-test/${f}`);
    }
    expect(entries.every((e) => e === '' || e.startsWith('9.9.9-test/'))).toBe(true);
  });

  it('holds the native better_sqlite3.node and no devDependency', () => {
    expect(entries).toContain('9.9.9-test/node_modules/better-sqlite3/build/Release/better_sqlite3.node');
    const prefix = '9.9.9-test/node_modules/';
    const top = new Set(
      entries
        .filter((e) => e.startsWith(prefix) && !e.startsWith(`${prefix}.`))
        .map((e) => e.slice(prefix.length).split('/'))
        .map((parts) => parts.slice(0, parts[0]?.startsWith('@') ? 2 : 1).join('/'))
        .filter((t) => t.length > 0 && !t.endsWith('/')),
    );
    // A devDependency may also be a production package's dependency (@types/node is protobufjs's):
    // only those npm resolves for production may ship.
    const production = new Set(
      execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable', '--offline'], { encoding: 'utf8' })
        .split('\n')
        .map((p) => p.split('/node_modules/').slice(1).join('/node_modules/'))
        .filter((p) => p.length > 0),
    );
    const devOnly = Object.keys(pkg.devDependencies).filter((d) => !production.has(d));
    expect(devOnly.length).toBeGreaterThan(5);
    expect(devOnly.filter((d) => top.has(d))).toEqual([]);
    expect([...top].filter((t) => t !== '' && !production.has(t))).toEqual([]);
    expect(top.has('@grpc/grpc-js')).toBe(true);
    expect(entries.some((e) => e.includes('/test/') && e.startsWith('9.9.9-test/dist/'))).toBe(false);
  });

  it('matches its manifest, and the manifest names this node', () => {
    const m = JSON.parse(readFileSync(first.manifest, 'utf8')) as Record<string, unknown>;
    const sha = createHash('sha256').update(readFileSync(first.artifact)).digest('hex');
    expect(m).toMatchObject({
      version: '9.9.9-test',
      sha256: sha,
      nodeAbi: process.versions.modules,
      arch: process.arch,
      topDir: '9.9.9-test',
    });
  });

  it('is reproducible: a rebuild reports unchanged with the same sha256', () => {
    const again = build();
    expect([again.changed, again.sha256]).toEqual([false, first.sha256]);
  }, 300_000);
});
