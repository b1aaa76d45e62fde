/**
 * Where a pgbb run spends its main thread's time: reads the `.cpuprofile` files that
 * `node --cpu-prof --cpu-prof-dir=DIR dist/cli/main.js ...` writes and prints, for each, the share of
 * the sampled time spent waiting (idle), collecting garbage, compiling at start-up, and in the top
 * functions by self time. Native calls appear under their JavaScript name (`writeBuffers` is fs.writev,
 * `open` fs.openSync, `append` the CRC-32C package). Time on other threads (libuv's pool, compression
 * workers) is not in the profile: `/usr/bin/time` beside it gives the process's CPU.
 *
 * Run: npx tsx bench/cpu-profile.ts DIR/*.cpuprofile [--top=N]
 * @module
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Start-up work: compiling our modules and Node's own. */
const COMPILE = new Set(['compileSourceTextModule', 'compileForInternalLoader', 'wrapSafe', 'compileFunction']);

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url === '' ? '' : ` ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
  return `${functionName || '(anonymous)'}${where}`;
}

function summarise(file: string, top: number): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  let compile = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const dt = profile.timeDeltas[i] ?? 0;
    if (!node) continue;
    total += dt;
    if (COMPILE.has(node.callFrame.functionName)) compile += dt;
    const key = label(node);
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(6)} ms`;
  const pct = (us: number) => `${((100 * us) / Math.max(total, 1)).toFixed(1).padStart(5)}%`;
  const lines = [`${file}: ${(total / 1000).toFixed(0)} ms sampled, ${ms(compile).trim()} compiling (${pct(compile).trim()})`];
  for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${ms(us)} ${pct(us)}  ${key}`);
  return lines.join('\n');
}

const args = process.argv.slice(2);
const topArg = args.find((a) => a.startsWith('--top='));
const top = topArg ? Number(topArg.slice('--top='.length)) : 15;
const files = args.filter((a) => !a.startsWith('--'));
if (files.length === 0) {
  process.stderr.write('usage: npx tsx bench/cpu-profile.ts DIR/*.cpuprofile [--top=N]\n');
  process.exit(2);
}
for (const f of files) process.stdout.write(`${summarise(f, top)}\n\n`);
