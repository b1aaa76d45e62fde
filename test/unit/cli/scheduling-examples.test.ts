// Every pgbb command line of the scheduling examples (examples/scheduling/: crontab, systemd units, Kubernetes
// CronJobs) and of docs/scheduling.md's code blocks parses with the current CLI: each is found, split as its
// shell, systemd or Kubernetes would split it, and given to its command's parser (the one `pgbb` runs), which
// must accept it. Nothing runs.
//
// How lines are found, so that none escapes: in shell-like files (crontab, systemd units, sh blocks) every
// non-comment line is split into words (quotes, backslashes, continuation lines) and at the shell's control
// operators (&&, ||, ;, |, &), redirections dropped; a word `pgbb` or `.../bin/pgbb` (also after systemd's `Key=`)
// starts a command line; `sh -c SCRIPT` is looked into. In YAML (Kubernetes), `command:` must be a one-line
// JSON array and `args:` is refused. A comment that holds what looks like a command (`pgbb WORD -...`) fails
// the test: a commented-out line would not be checked.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { backupTarget, type BackupCliOptions } from '../../../src/cli/backup-flags.js';
import { COMMANDS } from '../../../src/cli/run.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Lines for options and commands that other branches of this round add: they do not parse here yet. Each
 * names the error it fails with today; the test fails when one parses (remove it from this list once its
 * branch is merged) or fails with another error (the example or the awaited flag is wrong).
 */
const PENDING: Record<string, { awaits: string; error: RegExp }> = {};

/** A pgbb command line found in a file. */
interface Found {
  where: string;
  /** The arguments after `pgbb`. */
  argv: string[];
}

type Token = { word: string } | { op: string };

const CONTROL = new Set(['&&', '||', ';', '|', '&']);
const REDIRECT = new Set(['>', '>>', '<', '>&', '&>']);
const OPERATORS = ['&&', '||', '>>', '>&', '&>', ';', '|', '&', '>', '<'];

/** Splits a line into words and operators as sh does (no expansion: `$VAR` stays as written). */
export function shellTokens(line: string): Token[] {
  const tokens: Token[] = [];
  let word: string | undefined;
  const end = () => {
    if (word !== undefined) tokens.push({ word });
    word = undefined;
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      end();
    } else if (c === "'") {
      const close = line.indexOf("'", i + 1);
      if (close < 0) throw new Error(`unterminated ' in: ${line}`);
      word = (word ?? '') + line.slice(i + 1, close);
      i = close;
    } else if (c === '"') {
      let text = '';
      for (i++; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\' && '"\\$`'.includes(line[i + 1] ?? '')) i++;
        text += line[i];
      }
      if (i >= line.length) throw new Error(`unterminated " in: ${line}`);
      word = (word ?? '') + text;
    } else if (c === '\\') {
      word = (word ?? '') + (line[++i] ?? '');
    } else if (c === '#' && word === undefined) {
      break;
    } else if (';|&<>'.includes(c)) {
      // `2>`: the digits before a redirection are its file descriptor, not a word.
      if ((c === '>' || c === '<') && word !== undefined && /^\d+$/.test(word)) word = undefined;
      end();
      const op = OPERATORS.find((o) => line.startsWith(o, i))!;
      tokens.push({ op });
      i += op.length - 1;
    } else {
      word = (word ?? '') + c;
    }
  }
  end();
  return tokens;
}

/** `pgbb`, or an installed one by its path (`/usr/local/bin/pgbb`; not a directory such as `/etc/pgbb`). */
const isPgbb = (word: string): boolean => word === 'pgbb' || word.endsWith('/bin/pgbb');
const isShell = (word: string): boolean => /^(\/usr)?(\/bin\/)?(ba)?sh$/.test(word);

/** The pgbb command lines of one shell or systemd line. */
export function commandsInLine(line: string): string[][] {
  const found: string[][] = [];
  const segments: string[][] = [[]];
  let skipNext = false;
  for (const t of shellTokens(line)) {
    if ('op' in t) {
      if (CONTROL.has(t.op)) segments.push([]);
      else if (REDIRECT.has(t.op)) skipNext = true;
      else throw new Error(`operator ${t.op} in: ${line}`);
    } else if (skipNext) {
      skipNext = false;
    } else {
      segments.at(-1)!.push(t.word);
    }
  }
  for (const words of segments) {
    // systemd's `ExecStart=/usr/local/bin/pgbb`: the key is not part of the command.
    const first = words[0]?.replace(/^[A-Za-z]+=/, '');
    if (first !== undefined && isShell(first) && words[1] === '-c' && words[2] !== undefined) {
      found.push(...commandsInLine(words[2]));
      continue;
    }
    const at = words.findIndex((w, i) => isPgbb(i === 0 ? w.replace(/^[A-Za-z]+=/, '') : w));
    if (at >= 0) found.push(words.slice(at + 1));
  }
  return found;
}

/** Lines with their continuation lines (ending in `\`) joined, and their 1-based line numbers. */
function logicalLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let l = lines[i]!;
    while (l.endsWith('\\') && i + 1 < lines.length) l = l.slice(0, -1) + lines[++i]!;
    out.push({ line: start + 1, text: l });
  }
  return out;
}

/** A comment line that holds what looks like a pgbb command: it would escape the check. */
const COMMENTED_COMMAND = /\bpgbb\s+[a-z][a-z-]*\s+-/;

/**
 * Shell lines, or with `unit` the lines of a systemd unit, where only the `Exec*=` settings are command lines
 * (the others are not split into words, and may not hold what looks like a command either).
 */
function fromShellText(where: string, firstLine: number, text: string, unit = false): Found[] {
  const found: Found[] = [];
  for (const { line, text: l } of logicalLines(text)) {
    const at = `${where}:${firstLine + line - 1}`;
    const trimmed = l.trim();
    if (trimmed.startsWith('#') || trimmed.startsWith(';') || (unit && !/^Exec[A-Za-z]*=/.test(trimmed))) {
      if (COMMENTED_COMMAND.test(trimmed)) throw new Error(`${at}: a pgbb command in a comment or setting is not checked: ${trimmed}`);
      continue;
    }
    for (const argv of commandsInLine(l)) found.push({ where: at, argv });
  }
  return found;
}

function fromYaml(where: string, firstLine: number, text: string): Found[] {
  const found: Found[] = [];
  text.split('\n').forEach((l, i) => {
    const at = `${where}:${firstLine + i}`;
    if (l.trim().startsWith('#')) {
      if (COMMENTED_COMMAND.test(l)) throw new Error(`${at}: a pgbb command in a comment is not checked: ${l.trim()}`);
      return;
    }
    const m = /^\s*(?:-\s+)?(command|args):\s*(.*)$/.exec(l);
    if (!m) return;
    if (m[1] === 'args') throw new Error(`${at}: put the whole command line in command: (args: is not checked)`);
    let words: unknown;
    try {
      words = JSON.parse(m[2]!);
    } catch {
      throw new Error(`${at}: command: must be a one-line JSON array to be checked`);
    }
    if (!Array.isArray(words) || !words.every((w) => typeof w === 'string')) throw new Error(`${at}: command: is not an array of strings`);
    const [first = '', option, script] = words as string[];
    if (isShell(first) && option === '-c' && script !== undefined) {
      for (const argv of commandsInLine(script)) found.push({ where: at, argv });
    } else if (isPgbb(first)) {
      found.push({ where: at, argv: (words as string[]).slice(1) });
    }
  });
  return found;
}

const isYaml = (name: string): boolean => /\.ya?ml$/.test(name);
const isUnit = (name: string): boolean => /\.(service|timer|socket|path)$/.test(name);
/** The languages of the Markdown code blocks read as shell or systemd lines; other blocks may not hold a pgbb command. */
const SHELL_LANGS = new Set(['', 'sh', 'bash', 'shell', 'ini', 'crontab']);

/** The fenced code blocks of a Markdown text: language, first line of the body, body. */
function fencedBlocks(markdown: string): { lang: string; line: number; body: string }[] {
  const blocks: { lang: string; line: number; body: string }[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]!);
    if (!open) continue;
    const start = i + 1;
    let j = start;
    while (j < lines.length && lines[j]!.trim() !== open[1]) j++;
    blocks.push({ lang: open[2]!.toLowerCase(), line: start + 1, body: lines.slice(start, j).join('\n') });
    i = j;
  }
  return blocks;
}

function filesBelow(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => (statSync(join(dir, name)).isDirectory() ? filesBelow(join(dir, name)) : [join(dir, name)]));
}

/** Every pgbb command line of the scheduling examples and of docs/scheduling.md. */
function exampleCommandLines(): Found[] {
  const found: Found[] = [];
  for (const file of filesBelow(join(root, 'examples', 'scheduling'))) {
    const where = relative(root, file);
    const text = readFileSync(file, 'utf8');
    found.push(...(isYaml(file) ? fromYaml(where, 1, text) : fromShellText(where, 1, text, isUnit(file))));
  }
  for (const b of fencedBlocks(readFileSync(join(root, 'docs', 'scheduling.md'), 'utf8'))) {
    const where = `docs/scheduling.md:${b.line}`;
    if (b.lang === 'yaml' || b.lang === 'yml') found.push(...fromYaml('docs/scheduling.md', b.line, b.body));
    else if (SHELL_LANGS.has(b.lang)) found.push(...fromShellText('docs/scheduling.md', b.line, b.body, b.lang === 'ini'));
    else if (/\bpgbb\s+[a-z]/.test(b.body)) throw new Error(`${where}: a pgbb command in a \`\`\`${b.lang} block is not checked`);
  }
  return found;
}

/** What `pgbb ARGV` makes of its arguments, without running: `ok`, or the usage error it would print. */
async function parseOnly(argv: readonly string[]): Promise<{ ok: true } | { ok: false; error: string }> {
  const [name, ...rest] = argv;
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) return { ok: false, error: `unknown command "${name}"` };
  const command = await entry.load();
  try {
    const parsed = command.parse(rest);
    if (parsed.kind !== 'run') return { ok: false, error: `parses as --${parsed.kind}, which runs nothing` };
    // The rules of a backup's target (a repository or a directory) are checked once the environment is known.
    if (name === 'backup') backupTarget(parsed.options as BackupCliOptions, {});
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

describe('finding command lines', () => {
  it('splits as sh does: quotes, backslashes, operators, redirections, sh -c', () => {
    expect(commandsInLine(`17 * * * * pgbb backup --repo "$PGBB_REPO" -c fast >> /var/log/b.log 2>&1 && pgbb expire --repo 'a b'`)).toEqual(
      [
        ['backup', '--repo', '$PGBB_REPO', '-c', 'fast'],
        ['expire', '--repo', 'a b'],
      ],
    );
    expect(commandsInLine('ExecStart=/usr/local/bin/pgbb receive-wal -d "host=db1 user=\\"x\\"" -D /a\\ b')).toEqual([
      ['receive-wal', '-d', 'host=db1 user="x"', '-D', '/a b'],
    ]);
    expect(commandsInLine(`ExecStart=/bin/sh -c 'pgbb metrics > /tmp/m.tmp && mv /tmp/m.tmp /tmp/m'`)).toEqual([['metrics']]);
    expect(commandsInLine('* * * * * flock -n /tmp/l pgbb list; echo done # pgbb show x')).toEqual([['list']]);
    expect(commandsInLine('Description=pgbb: archive the WAL')).toEqual([]);
  });

  it('refuses what it could not check', () => {
    expect(() => fromShellText('f', 1, '# 0 * * * * pgbb backup --repo x')).toThrow(/in a comment or setting is not checked/);
    expect(() => fromShellText('f.service', 1, 'Description=runs pgbb list --json nightly', true)).toThrow(
      /in a comment or setting is not checked/,
    );
    expect(fromShellText('f.service', 1, "Description=pgbb's archiver\nExecStart=pgbb list", true)).toEqual([
      { where: 'f.service:2', argv: ['list'] },
    ]);
    expect(() => fromYaml('f', 1, '  args: ["backup"]')).toThrow(/args: is not checked/);
    expect(() => fromYaml('f', 1, '  command:\n    - pgbb')).toThrow(/one-line JSON array/);
    expect(fromYaml('f', 1, '  - command: ["pgbb", "list", "--json"]')).toEqual([{ where: 'f:1', argv: ['list', '--json'] }]);
  });
});

describe('the scheduling examples', () => {
  const lines = exampleCommandLines();
  const pendingSeen = new Set<string>();

  it('cover the three jobs and the files', () => {
    const commands = new Set(lines.map((l) => l.argv[0]));
    for (const c of ['backup', 'receive-wal', 'rehearse', 'expire', 'metrics']) expect(commands, c).toContain(c);
    const files = new Set(lines.map((l) => l.where.replace(/:\d+$/, '')));
    for (const f of [
      'examples/scheduling/crontab',
      'examples/scheduling/systemd/pgbb-receive-wal.service',
      'examples/scheduling/systemd/pgbb-backup.service',
      'examples/scheduling/systemd/pgbb-rehearse.service',
      'examples/scheduling/kubernetes/cronjobs.yaml',
      'docs/scheduling.md',
    ]) {
      expect(files, f).toContain(f);
    }
  });

  for (const { where, argv } of lines) {
    const key = argv.join(' ');
    const pending = PENDING[key];
    if (pending) pendingSeen.add(key);
    it(`${where}: pgbb ${key}`, async () => {
      const result = await parseOnly(argv);
      if (pending) {
        expect(result.ok, `now parses: remove it from PENDING (${pending.awaits} is merged)`).toBe(false);
        if (!result.ok) expect(result.error, `fails for another reason than awaiting ${pending.awaits}`).toMatch(pending.error);
      } else {
        expect(result).toEqual({ ok: true });
      }
    });
  }

  it('every PENDING line is in an example', () => {
    expect(Object.keys(PENDING).filter((k) => !pendingSeen.has(k))).toEqual([]);
  });

  it('no example holds a secret', () => {
    for (const file of [...filesBelow(join(root, 'examples', 'scheduling')), join(root, 'docs', 'scheduling.md')]) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toMatch(
        /AWS_SECRET_ACCESS_KEY\s*[=:]\s*\S|AWS_ACCESS_KEY_ID\s*[=:]\s*\S|PGPASSWORD\s*=\s*\S|password=[^.\s]/i,
      );
      expect(text, file).not.toMatch(/AKIA[0-9A-Z]{16}/);
    }
  });
});
