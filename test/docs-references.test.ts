// The docs stand alone: every link in README.md and docs/ leads to a file (and heading) of this
// repository, every `docs/....md#anchor` a code comment cites exists, and nothing cites documents
// that live outside the repository or the project's issue numbers.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', '.vitest-tmp']);
/** The rewrite tool and its map name the old forms on purpose; so does this test. */
const SKIP_FILES = new Set([
  'scripts/rewrite-citations.mjs',
  'docs/.citation-map.tsv',
  'test/docs-references.test.ts',
]);
const TEXT_EXTENSIONS = new Set([
  '.ts',
  '.cts',
  '.mts',
  '.mjs',
  '.js',
  '.md',
  '.rb',
  '.yml',
  '.yaml',
  '.sh',
  '.proto',
]);

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name)) continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) yield* walk(full);
    else if (TEXT_EXTENSIONS.has(extname(name))) yield relative(ROOT, full).split('\\').join('/');
  }
}

const files = [...walk(ROOT)].filter((f) => !SKIP_FILES.has(f));
const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');
const exists = (file: string): boolean => {
  try {
    statSync(join(ROOT, file));
    return true;
  } catch {
    return false;
  }
};

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to '-', repeats numbered. */
function anchorsOf(file: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of read(file).split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const heading = !fenced && line.match(/^#{1,6}\s+(.*?)\s*#*\s*$/);
    if (!heading) continue;
    const slug = (heading[1] ?? '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** Why `target` (a repository path, maybe with #anchor) does not resolve, or undefined. */
function brokenTarget(target: string): string | undefined {
  const [path = '', anchor] = target.split('#');
  if (!exists(path)) return `${path} does not exist`;
  if (anchor && path.endsWith('.md') && !anchorsOf(path).has(anchor))
    return `${path} has no heading #${anchor}`;
  return undefined;
}

/** The text of a Markdown file outside code fences and inline code. */
function proseLines(text: string): string[] {
  let fenced = false;
  return text.split('\n').map((line) => {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      return '';
    }
    return fenced ? '' : line.replace(/`[^`]*`/g, '');
  });
}

const markdown = files.filter((f) => f === 'README.md' || (f.startsWith('docs/') && f.endsWith('.md')));
const code = files.filter((f) => !f.endsWith('.md'));

/** A line that is (or ends in) a comment, in code of any kind we keep. */
function commentOf(line: string, file: string): string {
  const t = line.trimStart();
  if (['.sh', '.rb', '.yml', '.yaml'].includes(extname(file))) {
    if (t.startsWith('#')) return t;
    const i = line.indexOf(' # ');
    return i >= 0 ? line.slice(i) : '';
  }
  if (t.startsWith('//') || t.startsWith('*') || t.startsWith('/*')) return t;
  const i = line.indexOf(' // ');
  return i >= 0 ? line.slice(i) : '';
}

describe('docs references', () => {
  it('finds the Markdown files and code to check', () => {
    expect(markdown).toContain('README.md');
    expect(markdown).toContain('docs/architecture.md');
    expect(code.length).toBeGreaterThan(100);
  });

  it('every relative link in README.md and docs/ leads to an existing file and heading', () => {
    const broken: string[] = [];
    for (const file of markdown) {
      proseLines(read(file)).forEach((line, i) => {
        for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) {
          const link = m[1] ?? '';
          if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue;
          const target = link.startsWith('#') ? `${file}${link}` : posix.join(posix.dirname(file), link);
          const why = brokenTarget(target);
          if (why) broken.push(`${file}:${i + 1}: ${link}: ${why}`);
        }
      });
    }
    expect(broken).toEqual([]);
  });

  it('every docs/*.md path cited in code leads to an existing file and heading', () => {
    const broken: string[] = [];
    let cited = 0;
    for (const file of code) {
      read(file)
        .split('\n')
        .forEach((line, i) => {
          for (const m of line.matchAll(/\bdocs\/[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md(?:#[\p{L}\p{N}_-]+)?/gu)) {
            cited++;
            const why = brokenTarget(m[0]);
            if (why) broken.push(`${file}:${i + 1}: ${m[0]}: ${why}`);
          }
        });
    }
    expect(broken).toEqual([]);
    expect(cited).toBeGreaterThan(50);
  });

  it('nothing cites documents outside the repository or issue numbers', () => {
    const outside =
      /\breference \d+(?:\.\d+)*|ARCHITECTURE\.md|toolchain-notes|opennebula-drivers\.md|opennebula-image-datastore\.md|\(issue \d+\)/;
    const found: string[] = [];
    for (const file of files) {
      read(file)
        .split('\n')
        .forEach((line, i) => {
          const inComment = file.endsWith('.md') ? line : commentOf(line, file);
          if (outside.test(line) || /\bissue \d+/i.test(inComment))
            found.push(`${file}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(found).toEqual([]);
  });
});
