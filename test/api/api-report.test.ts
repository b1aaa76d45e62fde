// Locks the public surface (STYLE practice 15): the committed API report must match the sources, the
// root stays small, every value has exactly one home, internals stay out, and package.json, typedoc.json
// and tsup.config.ts name the same entry points.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { publicEntries } from '../../tsup.config.js';
import { collectApi, renderReport, reportPath, type ApiEntry } from './api-report.js';

/** Values the root may hold: what an application needs, with room left for WAL archiving and restore. */
const ROOT_VALUE_BUDGET = 26;

/** Building-block internals no entry point may export. */
const INTERNALS = [
  'XxHash32',
  'xxhash32',
  'Lz4FrameDecoder',
  'decodeLz4Block',
  'crc32cUpdate',
  'crc32cFinal',
  'CRC32C_INIT',
  'ManifestParser',
  'TarStructureChecker',
  'FeedbackTracker',
  'IncrementalHeaderReader',
  'planReconstruction',
  'CompressionPool',
  'sharedCompressionPool',
  'pipeThrough',
  'pgpassKeyFor',
  'withAdvice',
  'withIncrementalAdvice',
  'BackendMessage',
  'StreamMessage',
  'CopyDataMessage',
  'ErrorResponseMessage',
  'Framer',
  'Reader',
  'Writer',
  'parseMessage',
  'resolveBaseBackupOptions',
  'startBackupWith',
  'parseChecksumNotice',
  'mapServerCompressionError',
];

const root = new URL('../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8');

let api: ApiEntry[];
beforeAll(() => {
  api = collectApi();
}, 120_000);

describe('the public API', () => {
  it('matches the committed report (test/api/api-report.md)', () => {
    const report = renderReport(api);
    const committed = readFileSync(reportPath, 'utf8');
    if (committed !== report) {
      // toBe shows the difference; the message says what to do about it.
      expect(
        report,
        'the public API changed: if that is intended, run `npm run api:report` and commit ' + 'test/api/api-report.md with the change',
      ).toBe(committed);
    }
  });

  it(`keeps the root entry point to at most ${ROOT_VALUE_BUDGET} values`, () => {
    const rootEntry = api.find((e) => e.specifier === 'pg-basebackup')!;
    expect(rootEntry.exports.filter((x) => x.value).length).toBeLessThanOrEqual(ROOT_VALUE_BUDGET);
  });

  it('exports each value from one subpath at most (the root repeats some of them)', () => {
    // The root is the front door; a subpath is where a program that wants only part of the library
    // (the CLI's commands among them) finds each value, so a value has one subpath home.
    const homes = new Map<string, string[]>();
    for (const e of api) {
      if (e.specifier === 'pg-basebackup') continue;
      for (const x of e.exports) if (x.value) homes.set(x.name, [...(homes.get(x.name) ?? []), e.specifier]);
    }
    const twice = [...homes].filter(([, where]) => where.length > 1);
    expect(twice).toEqual([]);
    const errors = api.find((e) => e.specifier === 'pg-basebackup/errors')!;
    const errorValues = new Set(errors.exports.filter((x) => x.value).map((x) => x.name));
    // /errors holds every error class there is.
    const allClasses = [...read('src/errors.ts').matchAll(/^export class (\w+)/gm)].map((m) => m[1]);
    expect([...errorValues].sort()).toEqual(expect.arrayContaining(allClasses));
  });

  it('exports no internals', () => {
    const leaked = api.flatMap((e) => e.exports.filter((x) => INTERNALS.includes(x.name)).map((x) => `${e.specifier}: ${x.name}`));
    expect(leaked).toEqual([]);
    const protocol = api.flatMap((e) =>
      e.exports.filter((x) => x.declaredIn.startsWith('src/protocol/')).map((x) => `${e.specifier}: ${x.name}`),
    );
    expect(protocol).toEqual([]);
  });

  it('documents each entry point with a module comment and an example', () => {
    for (const file of Object.values(publicEntries)) {
      const head = /^\/\*\*([\s\S]*?)\*\//.exec(read(file))?.[1] ?? '';
      expect(head, file).toMatch(/@example/);
      expect(head, file).toMatch(/@module pg-basebackup(\/[a-z-]+)?\s/);
    }
  });

  it('lists the same entry points in tsup.config.ts, package.json exports (types first) and typedoc.json', () => {
    const pkg = JSON.parse(read('package.json')) as { exports: Record<string, Record<string, string> | string> };
    const typedoc = JSON.parse(read('typedoc.json')) as { entryPoints: string[] };
    const subpaths = Object.keys(pkg.exports)
      .filter((k) => k !== './package.json')
      .sort();
    expect(subpaths).toEqual(
      Object.keys(publicEntries)
        .map((n) => (n === 'index' ? '.' : `./${n}`))
        .sort(),
    );
    for (const [name] of Object.entries(publicEntries)) {
      const target = pkg.exports[name === 'index' ? '.' : `./${name}`] as Record<string, string>;
      expect(Object.keys(target)).toEqual(['types', 'import']);
      expect(target).toEqual({ types: `./dist/${name}.d.ts`, import: `./dist/${name}.js` });
    }
    expect([...typedoc.entryPoints].sort()).toEqual(Object.values(publicEntries).sort());
  });
});
