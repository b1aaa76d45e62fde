// Every entry point's module comment has an @example; this compiles each one as a user's program
// would be: importing 'pg-basebackup' and its subpaths through package.json's `exports`, so against
// the built declarations in dist/ (`npm run lint` and `npm test` build first).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { publicEntries } from '../../tsup.config.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** The ```ts blocks under @example in a file's leading TSDoc comment, comment stars removed. */
function moduleExamples(file: string): string[] {
  const head = /^\/\*\*([\s\S]*?)\*\//.exec(readFileSync(join(root, file), 'utf8'))?.[1] ?? '';
  return [...head.matchAll(/@example\s*\n\s*\*\s*```ts\n([\s\S]*?)\n\s*\*\s*```/g)].map((m) =>
    m[1]!
      .split('\n')
      .map((l) => l.replace(/^\s*\* ?/, ''))
      .join('\n'),
  );
}

// Inside the package directory (.tmp/ is ignored by git), so 'pg-basebackup' resolves to this package.
mkdirSync(join(root, '.tmp'), { recursive: true });
const dir = mkdtempSync(join(root, '.tmp', 'entry-examples-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('entry point examples', () => {
  it('compile against the built package', () => {
    expect(existsSync(join(root, 'dist/index.d.ts')), 'run `npm run build` first').toBe(true);
    const files: string[] = [];
    for (const [name, file] of Object.entries(publicEntries)) {
      const examples = moduleExamples(file);
      expect(examples.length, `${file} has an @example`).toBeGreaterThan(0);
      examples.forEach((code, i) => {
        const path = join(dir, `${name}-${i}.ts`);
        writeFileSync(path, `${code}\nexport {};\n`);
        files.push(path);
      });
    }
    const config = ts.getParsedCommandLineOfConfigFile(
      join(root, 'tsconfig.json'),
      {},
      {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: () => {},
      },
    )!;
    const program = ts.createProgram(files, { ...config.options, noEmit: true, rootDir: root });
    const problems = ts
      .getPreEmitDiagnostics(program)
      .map((d) => `${d.file ? `${d.file.fileName.slice(dir.length + 1)}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    expect(problems).toEqual([]);
  }, 120_000);
});
