#!/usr/bin/env node
// Rewrites citations of documents that live outside the repository ("reference 2.3", the shared
// ARCHITECTURE.md, toolchain-notes, the OpenNebula reference files) into the docs/ file#anchor that
// now holds the fact, as docs/.citation-map.tsv says, and removes "(issue N)" mentions from code
// comments, the proto and docs. Idempotent: a second run changes nothing.
//
//   node scripts/rewrite-citations.mjs            rewrite the tree in place, print a summary
//   node scripts/rewrite-citations.mjs --check    change nothing; exit 1 if something would change
//
// In Markdown (outside code fences) a citation becomes a relative link; elsewhere, and inside
// fences, the repository path `docs/...md#anchor`. Test titles (describe/it/test) are left alone so
// that test names stay the same.
import { readFileSync, writeFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, dirname, extname, posix } from 'node:path';

const ROOT = join(dirname(new URL(import.meta.url).pathname), '..');
const MAP_FILE = join(ROOT, 'docs/.citation-map.tsv');
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git']);
const SKIP_FILES = new Set([
  'scripts/rewrite-citations.mjs',
  'docs/.citation-map.tsv',
  'test/docs-references.test.ts',
]);
const EXTENSIONS = new Set([
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
const HASH_COMMENT = new Set(['.rb', '.yml', '.yaml', '.sh']);

const check = process.argv.includes('--check');

function loadMap() {
  const rows = [];
  for (const line of readFileSync(MAP_FILE, 'utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [kind, key, context, target, title] = line.split('\t');
    const unescape = (s) => (s ?? '').replaceAll('\\n', '\n');
    rows.push({
      kind,
      key: unescape(key),
      context: context ? new RegExp(context) : null,
      target: unescape(target),
      title,
    });
  }
  return rows;
}

const rows = loadMap();
const phrases = rows.filter((r) => r.kind === 'phrase');
const NUM = String.raw`\d+(?:\.\d+)*`;
const SECTION_RE = new RegExp(String.raw`\breference (${NUM}(?:(?:, | and |-)${NUM})*)`, 'g');
const base = (n) => n.replace(/\.md$/, '');
const NAMES = [...new Set(rows.filter((r) => r.kind === 'name').map((r) => base(r.key)))];
const NAME_ALT = `(?:/work/shared/)?(?:reference/)?(${NAMES.join('|')})(?:\\.md)?`;
const NAME_RE = new RegExp(`\`${NAME_ALT}\`|${NAME_ALT}`, 'g');

function lookup(kind, key, line) {
  for (const r of rows) {
    if (r.kind === kind && r.key === key && (!r.context || r.context.test(line))) return r;
  }
  return undefined;
}

/** The rows for "2.1, 2.3", "2.1-2.5", "4.1-4.2": the whole expression first, else each part. */
function sectionTargets(expr, line) {
  const whole = lookup('section', expr, line);
  if (whole) return [whole];
  const keys = [];
  for (const part of expr.split(/, | and /)) {
    const range = part.match(/^(\d+)\.(\d+)-(\d+)\.(\d+)$/);
    if (range && range[1] === range[3]) {
      for (let i = Number(range[2]); i <= Number(range[4]); i++) keys.push(`${range[1]}.${i}`);
    } else keys.push(...part.split('-'));
  }
  const found = [];
  for (const k of keys) {
    const r = lookup('section', k, line) ?? lookup('section', k.split('.')[0], line);
    if (!r) throw new Error(`no map row for "reference ${k}" in: ${line.trim()}`);
    if (!found.includes(r)) found.push(r);
  }
  return found;
}

function render(targets, file, asLink) {
  return targets
    .map((r) => {
      if (!asLink) return r.target;
      const [path, anchor] = r.target.split('#');
      const rel = posix.relative(posix.dirname(file), path) || posix.basename(path);
      return `[${r.title}](${rel}${anchor ? `#${anchor}` : ''})`;
    })
    .join(', ')
    .replace(/, ([^,]*)$/, ' and $1');
}

/** The part of a code line that is a comment (start index), or -1. */
function commentStart(line, ext) {
  const t = line.trimStart();
  if (HASH_COMMENT.has(ext)) {
    if (t.startsWith('#')) return line.length - t.length;
    const i = line.indexOf(' # ');
    return i;
  }
  if (t.startsWith('//') || t.startsWith('*') || t.startsWith('/*')) return line.length - t.length;
  const i = line.indexOf(' // ');
  return i >= 0 ? i : line.indexOf('/** ');
}

const TEST_TITLE = /\b(?:describe|it|test)(?:\.\w+)*\(\s*['"`]/;

function rewriteIssues(text) {
  return text
    .replace(
      /\b[Ii]ssue 9, class (\d+)([:,])/g,
      'Security review, class $1 (docs/security.md#the-attack-tests)$2',
    )
    .replace(/\(issue 9, class (\d+)\)/g, '(security review, class $1)')
    .replace(/\(issue \d+: /g, '(')
    .replace(/ ?\(issue \d+\)/g, '')
    .replace(/\bthe review that led to this page\b/g, 'the security review that led to this page');
}

function rewriteFile(file, original) {
  const ext = extname(file);
  const isMd = ext === '.md';
  let text = original;
  for (const p of phrases) text = text.split(p.key).join(p.target);
  let fenced = false;
  const out = text.split('\n').map((line) => {
    if (isMd && /^\s*```/.test(line)) {
      fenced = !fenced;
      return line;
    }
    if (TEST_TITLE.test(line)) return line;
    const asLink = isMd && !fenced;
    let l = line.replace(SECTION_RE, (_m, expr) => render(sectionTargets(expr, line), file, asLink));
    l = l.replace(NAME_RE, (m, quoted, bare) => {
      const name = quoted ?? bare;
      const r = rows.find(
        (x) => x.kind === 'name' && base(x.key) === name && (!x.context || x.context.test(line)),
      );
      return r ? render([r], file, asLink) : m;
    });
    if (isMd) return fenced ? l : rewriteIssues(l);
    const c = commentStart(l, ext);
    return c >= 0 ? l.slice(0, c) + rewriteIssues(l.slice(c)) : l;
  });
  return out.join('\n');
}

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name)) continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) yield* walk(full);
    else if (EXTENSIONS.has(extname(name))) yield full;
  }
}

const COUNT_RE =
  /reference \d+(?:\.\d+)*|ARCHITECTURE\.md|toolchain-notes|opennebula-drivers\.md|opennebula-image-datastore\.md/g;
const ISSUE_RE = /\bissue \d+/gi;
let before = 0;
let after = 0;
let issuesBefore = 0;
let issuesAfter = 0;
const changed = [];
for (const full of walk(ROOT)) {
  const file = relative(ROOT, full).split('\\').join('/');
  if (SKIP_FILES.has(file)) continue;
  const original = readFileSync(full, 'utf8');
  const next = rewriteFile(file, original);
  before += (original.match(COUNT_RE) ?? []).length;
  after += (next.match(COUNT_RE) ?? []).length;
  issuesBefore += (original.match(ISSUE_RE) ?? []).length;
  issuesAfter += (next.match(ISSUE_RE) ?? []).length;
  if (next !== original) {
    changed.push(file);
    if (!check) writeFileSync(full, next);
  }
}
console.log(
  `citations: ${before} before, ${after} after; "issue N" mentions: ${issuesBefore} before, ${issuesAfter} after`,
);
console.log(
  `${check ? 'would change' : 'changed'} ${changed.length} files${changed.length ? ':\n  ' + changed.join('\n  ') : ''}`,
);
if (check && changed.length) process.exit(1);
