// Re-render the Markdown and SVG of a results file: `npx tsx bench/render.ts bench/results/<file>.json [outdir]`.
// Writes latest.md and latest.svg next to it (or into outdir), e.g. after the report format changed.
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { toMarkdown, toSvg, type BenchResult } from './lib/report.js';

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write('usage: npx tsx bench/render.ts RESULTS.json [OUTDIR]\n');
  process.exit(2);
}
const result = JSON.parse(await readFile(file, 'utf8')) as BenchResult;
const out = process.argv[3] ?? dirname(file);
await writeFile(join(out, 'latest.md'), toMarkdown(result));
await writeFile(join(out, 'latest.svg'), toSvg(result));
process.stdout.write(`wrote ${join(out, 'latest.md')} and ${join(out, 'latest.svg')}\n`);
