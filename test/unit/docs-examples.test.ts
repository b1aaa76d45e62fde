// Every ```ts block in README.md and docs/**/*.md is type-checked, as a reader's program would be, against
// the package's source. A block imports the package by its published names ('pg-basebackup',
// 'pg-basebackup/wal', ...); those names are mapped to source files with compiler `paths` built from
// package.json's `exports`, by one convention: an export whose target is `./dist/X.js` (or whose types are
// `./dist/X.d.ts`) is built from the first of `src/X.ts`, `src/entries/X.ts` and `src/X/index.ts` that
// exists. So a new subpath entry point in `exports` is followed here without a change to this test.
//
// Each block is its own ES module (top-level await allowed). A block that is not meant to compile (a
// fragment, pseudo-code) is fenced ```ts no-check; keep those rare.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PACKAGE_NAME = 'pg-basebackup';

/** One fenced code block of a Markdown file. */
export interface CodeBlock {
  /** The Markdown file, relative to the package root. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** 1-based index among the file's checked blocks. */
  index: number;
  code: string;
}

/** The ```ts (or ```typescript) blocks of a Markdown text, minus those marked `no-check`. */
export function extractTsBlocks(file: string, markdown: string): CodeBlock[] {
  const lines = markdown.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)\s*(.*)$/.exec(lines[i] ?? '');
    if (!open) continue;
    const fence = open[2] ?? '```';
    const lang = (open[3] ?? '').toLowerCase();
    const attrs = (open[4] ?? '').trim().split(/\s+/);
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j] ?? '';
      if (l.trim().startsWith(fence[0]!.repeat(fence.length)) && l.trim().replace(/[`~]/g, '') === '') break;
      body.push(l);
    }
    if ((lang === 'ts' || lang === 'typescript') && !attrs.includes('no-check')) {
      blocks.push({ file, line: i + 1, index: blocks.length + 1, code: body.join('\n') });
    }
    i = j;
  }
  return blocks;
}

type ExportTarget = string | null | { [condition: string]: ExportTarget } | ExportTarget[];

/** The first `types`, `import` or `default` file of an `exports` entry. */
function exportFile(target: ExportTarget): string | undefined {
  if (typeof target === 'string') return target;
  if (target === null) return undefined;
  if (Array.isArray(target)) {
    for (const t of target) {
      const f = exportFile(t);
      if (f !== undefined) return f;
    }
    return undefined;
  }
  for (const condition of ['types', 'import', 'default']) {
    const t = target[condition];
    if (t !== undefined) {
      const f = exportFile(t);
      if (f !== undefined) return f;
    }
  }
  return undefined;
}

/** Where the source of the built file `dist/<stem>.js` may be, in the order they are tried. */
export function sourceCandidates(packageRoot: string, stem: string): string[] {
  return [
    join(packageRoot, 'src', `${stem}.ts`),
    join(packageRoot, 'src', 'entries', `${stem}.ts`),
    join(packageRoot, 'src', stem, 'index.ts'),
  ];
}

/**
 * Compiler `paths` for the package's own name, from package.json `exports`: the key `.` is the bare name,
 * `./wal` is `pg-basebackup/wal`, a pattern `./*` is `pg-basebackup/*`; the target `./dist/X.js` or
 * `./dist/X.d.ts` becomes the first of {@link sourceCandidates} that `exists` (all of them, in order, for a
 * pattern or when none exists, so that the compiler's error names what it looked for). Entries outside
 * `dist/` (`./package.json`) are left out.
 */
export function pathsFromExports(
  packageName: string,
  exportsField: Record<string, ExportTarget> | string,
  packageRoot: string,
  exists: (path: string) => boolean = existsSync,
): Record<string, string[]> {
  const entries: [string, ExportTarget][] = typeof exportsField === 'string' ? [['.', exportsField]] : Object.entries(exportsField);
  const paths: Record<string, string[]> = {};
  for (const [key, target] of entries) {
    const file = exportFile(target);
    if (file === undefined) continue;
    const m = /^\.\/dist\/(.+?)(\.d\.ts|\.js)$/.exec(file);
    if (!m) continue;
    const specifier = key === '.' ? packageName : `${packageName}/${key.replace(/^\.\//, '')}`;
    const candidates = sourceCandidates(packageRoot, m[1]!);
    const found = key.includes('*') ? undefined : candidates.find((c) => exists(c));
    paths[specifier] = found === undefined ? candidates : [found];
  }
  return paths;
}

/** README.md and every Markdown file under docs/. */
function markdownFiles(): string[] {
  const out = ['README.md'];
  const walk = (dir: string): void => {
    if (!existsSync(join(root, dir))) return;
    for (const name of readdirSync(join(root, dir)).sort()) {
      const rel = join(dir, name);
      if (statSync(join(root, rel)).isDirectory()) walk(rel);
      else if (name.endsWith('.md')) out.push(rel);
    }
  };
  walk('docs');
  return out;
}

/** Where a block lives while it is compiled (never written to disk). `.mts`: an ES module whatever the package type. */
function virtualPath(block: CodeBlock): string {
  return join(root, '.docs-examples', `${block.file.replace(/[/\\]/g, '__')}.block${block.index}.mts`);
}

/** Type-check the blocks together; one message per error, naming the Markdown file, block and line. */
export function typeCheckBlocks(blocks: readonly CodeBlock[], paths: Record<string, string[]>): string[] {
  const configFile = ts.readConfigFile(join(root, 'tsconfig.json'), (p) => ts.sys.readFile(p));
  if (configFile.error) return [ts.flattenDiagnosticMessageText(configFile.error.messageText, '\n')];
  const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, root);
  const options: ts.CompilerOptions = {
    ...parsed.options,
    noEmit: true,
    declaration: false,
    sourceMap: false,
    paths,
    pathsBasePath: root,
  };
  const byPath = new Map(blocks.map((b) => [virtualPath(b), b] as const));
  const host = ts.createCompilerHost(options, true);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (p) => byPath.has(p) || fileExists.call(host, p);
  host.readFile = (p) => byPath.get(p)?.code ?? readFile.call(host, p);
  host.getSourceFile = (p, languageVersion, onError, shouldCreate) => {
    const b = byPath.get(p);
    if (b) return ts.createSourceFile(p, b.code, languageVersion, true);
    return getSourceFile.call(host, p, languageVersion, onError, shouldCreate);
  };
  const program = ts.createProgram({ rootNames: [...byPath.keys()], options, host });
  const messages: string[] = [];
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const b = d.file ? byPath.get(d.file.fileName) : undefined;
    if (d.file && !b) continue; // the source itself is checked by `npm run typecheck`
    if (!b || !d.file || d.start === undefined) {
      messages.push(`TS${d.code}: ${text}`);
      continue;
    }
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    // The block's first code line is the line after its fence.
    messages.push(`${b.file}:${b.line + 1 + line}: block ${b.index} (fence at line ${b.line}): TS${d.code}: ${text}`);
  }
  return messages;
}

describe('pathsFromExports', () => {
  const exportsField = {
    '.': { types: './dist/index.d.ts', import: './dist/index.js' },
    './wal': { types: './dist/wal.d.ts', import: './dist/wal.js' },
    './tar': { import: './dist/tar/index.js' },
    './errors': './dist/errors.js',
    './gone': './dist/gone.js',
    './*': { types: './dist/more/*.d.ts', import: './dist/more/*.js' },
    './package.json': './package.json',
  };

  it('maps dist/X.js to the source file that exists (src/X.ts, src/entries/X.ts, src/X/index.ts) and leaves package.json out', () => {
    const existing = new Set([
      '/p/src/index.ts',
      '/p/src/entries/wal.ts',
      '/p/src/tar/index.ts',
      '/p/src/errors.ts',
      '/p/src/entries/errors.ts',
    ]);
    expect(pathsFromExports('pkg', exportsField, '/p', (f) => existing.has(f))).toEqual({
      pkg: ['/p/src/index.ts'],
      'pkg/wal': ['/p/src/entries/wal.ts'],
      'pkg/tar': ['/p/src/tar/index.ts'],
      'pkg/errors': ['/p/src/errors.ts'],
      'pkg/gone': ['/p/src/gone.ts', '/p/src/entries/gone.ts', '/p/src/gone/index.ts'],
      'pkg/*': ['/p/src/more/*.ts', '/p/src/entries/more/*.ts', '/p/src/more/*/index.ts'],
    });
  });
});

describe('extractTsBlocks', () => {
  it('takes ts and typescript blocks with their fence line, and skips no-check, other languages and nested fences', () => {
    const md = [
      '# t',
      '```ts',
      'const a = 1;',
      '```',
      '```sh',
      'echo',
      '```',
      '```ts no-check',
      'nope(',
      '```',
      '````md',
      '```ts',
      'inside a Markdown example',
      '```',
      '````',
      '```typescript',
      'const b = 2;',
      '```',
    ].join('\n');
    expect(extractTsBlocks('x.md', md)).toEqual([
      { file: 'x.md', line: 2, index: 1, code: 'const a = 1;' },
      { file: 'x.md', line: 16, index: 2, code: 'const b = 2;' },
    ]);
  });
});

describe('examples in the documentation', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, ExportTarget> };
  const paths = pathsFromExports(PACKAGE_NAME, pkg.exports, root);
  const blocks = markdownFiles().flatMap((f) => extractTsBlocks(f, readFileSync(join(root, f), 'utf8')));

  it('every entry point in package.json exports has its source file', () => {
    expect(paths[PACKAGE_NAME]).toBeDefined();
    const missing = Object.entries(paths)
      .filter(([spec, files]) => !spec.includes('*') && !files.some((f) => existsSync(f)))
      .map(([spec, files]) => `${spec} -> none of ${files.map((f) => relative(root, f)).join(', ')}`);
    expect(missing).toEqual([]);
  });

  it('README.md and docs/ have ts examples to check', () => {
    expect(blocks.filter((b) => b.file === 'README.md').length).toBeGreaterThan(0);
    expect(blocks.filter((b) => b.file.startsWith('docs')).length).toBeGreaterThan(0);
  });

  it('every ts block type-checks against the source', () => {
    expect(typeCheckBlocks(blocks, paths)).toEqual([]);
  }, 120_000);
});
