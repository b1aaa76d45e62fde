import { defineConfig, type Options } from 'tsup';

/**
 * The public entry points: the root and one file per subpath (`pg-basebackup/<name>`), each with its
 * declarations. package.json's `exports`, typedoc.json's `entryPoints` and test/api/api-report.ts
 * list the same names.
 */
export const publicEntries: Record<string, string> = {
  index: 'src/index.ts',
  connection: 'src/entries/connection.ts',
  replication: 'src/entries/replication.ts',
  wal: 'src/entries/wal.ts',
  tar: 'src/entries/tar.ts',
  manifest: 'src/entries/manifest.ts',
  compress: 'src/entries/compress.ts',
  recovery: 'src/entries/recovery.ts',
  rehearse: 'src/entries/rehearse.ts',
  backup: 'src/entries/backup.ts',
  repository: 'src/entries/repository.ts',
  status: 'src/entries/status.ts',
  errors: 'src/entries/errors.ts',
  verify: 'src/entries/verify.ts',
  combine: 'src/entries/combine.ts',
  lsn: 'src/entries/lsn.ts',
};

const shared: Options = {
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  // Shared chunks: a class is defined once, so `instanceof` agrees whichever entry point it came from.
  splitting: true,
  // Not minified: error classes print their own names (`ConnectionError [...]` from console.error, and
  // `err.constructor.name`), and stack traces and source maps read as the source does.
  minify: false,
};

// One build: the library's entry points and the CLI share their chunks, so the package holds one copy
// of the library. esbuild puts each file in the chunks of every entry point (and dynamically imported
// module) whose imports reach it, whether or not the importer uses what the file holds; so the CLI's
// modules import the library through the narrowest entry point that has what they need, never the
// root, which reaches nearly all of it (test/unit/layering.test.ts). `pgbb --version` then loads the
// runner and the errors alone, and each command's module, loaded when it runs, the files its own
// entry points reach.
export default defineConfig({
  ...shared,
  entry: { ...publicEntries, 'cli/main': 'src/cli/main.ts' },
  dts: { entry: publicEntries },
  clean: true,
});
