/**
 * The documentation travels with the code: every relative link in README.md and docs/*.md must name
 * a file inside this repository (and a heading that exists, when it has a #fragment), so a fresh
 * clone has everything the docs point to.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

/** Markdown files whose links are checked, relative to the repository root. */
function documents(): string[] {
  const docs = path.join(ROOT, 'docs');
  const inDocs = existsSync(docs)
    ? readdirSync(docs, { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.md'))
        .map((f) => path.join('docs', f))
    : [];
  return ['README.md', ...inDocs].sort();
}

/** Text outside fenced code blocks and (one-line) inline code spans, where a `[x](y)` is not a link. */
function prose(markdown: string): string {
  return markdown
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
    .replace(/(`+)[^`\n][^\n]*?\1/g, (m) => ' '.repeat(m.length));
}

/** Link targets: inline `[text](target "title")`, images, and reference definitions `[id]: target`. */
function linkTargets(markdown: string): string[] {
  const text = prose(markdown);
  const targets: string[] = [];
  for (const m of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) targets.push(m[1]!);
  for (const m of text.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/gm)) targets.push(m[1]!);
  return targets;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to '-', repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(markdown).matchAll(/^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]!
      .replace(/`/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Why `target`, linked from `fromFile` (relative to `root`), does not resolve; undefined when it does. */
function brokenLink(root: string, fromFile: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined; // https:, mailto: … are not files
  const [rawPath = '', fragment] = target.split('#', 2);
  const filePath = decodeURIComponent(rawPath);
  const absolute = filePath === '' ? path.join(root, fromFile) : path.resolve(root, path.dirname(fromFile), filePath);
  const relative = path.relative(root, absolute);
  if (relative.startsWith('..') || path.isAbsolute(relative)) return 'points outside the repository';
  if (!existsSync(absolute)) return `no such file: ${relative}`;
  if (fragment && statSync(absolute).isFile() && absolute.endsWith('.md')) {
    if (!anchors(readFileSync(absolute, 'utf8')).has(fragment)) return `no heading #${fragment} in ${relative}`;
  }
  return undefined;
}

describe('links in the documentation', () => {
  it('checks README.md and the docs folder', () => {
    expect(documents()).toEqual(expect.arrayContaining(['README.md', path.join('docs', 'architecture.md')]));
  });

  it.each(documents())('%s: every relative link resolves inside the repository', (doc) => {
    const markdown = readFileSync(path.join(ROOT, doc), 'utf8');
    const broken = linkTargets(markdown)
      .map((target) => ({ target, why: brokenLink(ROOT, doc, target) }))
      .filter((l) => l.why !== undefined);
    expect(broken).toEqual([]);
  });

  it('would catch a link outside the repository, a missing file and a missing heading', () => {
    const sample = [
      'See [the notes](../shared/DESIGN.md), [gone](docs/nope.md), [bad anchor](README.md#no-such-heading),',
      '[ok](README.md#tests), [web](https://example.com/x.md) and `[code](not/a/link.md)`.',
      '',
      '```',
      '[fenced](also/not/a/link.md)',
      '```',
      '[ref]: docs/architecture.md',
    ].join('\n');
    const targets = linkTargets(sample);
    expect(targets).toEqual([
      '../shared/DESIGN.md',
      'docs/nope.md',
      'README.md#no-such-heading',
      'README.md#tests',
      'https://example.com/x.md',
      'docs/architecture.md',
    ]);
    expect(targets.map((t) => brokenLink(ROOT, 'README.md', t))).toEqual([
      'points outside the repository',
      `no such file: ${path.join('docs', 'nope.md')}`,
      'no heading #no-such-heading in README.md',
      undefined,
      undefined,
      undefined,
    ]);
  });
});

/** The code and scripts a documented variable must be read by (tests other than the support code do not count). */
function codeText(): string {
  const roots = ['src', 'workers', 'scripts', 'bench', 'docker', path.join('test', 'support')];
  const files = roots
    .filter((r) => existsSync(path.join(ROOT, r)))
    .flatMap((r) =>
      readdirSync(path.join(ROOT, r), { recursive: true, encoding: 'utf8' })
        .filter((f) => /\.(ts|sh|ya?ml|json)$/.test(f) && !f.includes('node_modules'))
        .map((f) => path.join(ROOT, r, f)),
    );
  return [...files, path.join(ROOT, 'docker-compose.yml')]
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
}

describe('variables named in the documentation', () => {
  const code = codeText();

  // Code spans and examples included: that is where variables are named.
  it.each(documents())('%s: every KTS_* and TEMPORAL_* variable it names exists in the code', (doc) => {
    const named = new Set(
      [...readFileSync(path.join(ROOT, doc), 'utf8').matchAll(/\b(?:KTS|TEMPORAL)_[A-Z0-9_]*/g)]
        .map((m) => m[0].replace(/_+$/, ''))
        .filter((v) => v.includes('_')),
    );
    // A name ending in '_' (KTS_PG_URL_<ROLE>) stands for a family: some variable must start with it.
    const missing = [...named].filter((v) => !new RegExp(`\\b${v}`).test(code));
    expect(missing).toEqual([]);
  });
});
