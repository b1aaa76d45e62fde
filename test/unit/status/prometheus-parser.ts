// A small strict parser of the Prometheus text exposition format (0.0.4), for the tests: every line is
// a `# HELP`, a `# TYPE` or a sample of the family last declared; names, labels, escapes and values are
// checked, and a family's HELP and TYPE come once, before its samples. Throws on anything else.

export interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  samples: { labels: Record<string, string>; value: number }[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function unescapeText(text: string, allowQuote: boolean): string {
  return text.replace(/\\(.)/g, (all, c: string) => {
    if (c === 'n') return '\n';
    if (c === '\\') return '\\';
    if (c === '"' && allowQuote) return '"';
    throw new Error(`bad escape ${all}`);
  });
}

function parseValue(text: string): number {
  if (text === 'NaN') return Number.NaN;
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value "${text}"`);
  return Number(text);
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest.length > 0) {
    const m = /^([^=]+)="((?:[^"\\]|\\.)*)"(,|$)/.exec(rest);
    if (!m || !LABEL_NAME.test(m[1]!)) throw new Error(`bad labels "${text}"`);
    if (m[1]! in labels) throw new Error(`label ${m[1]} repeated`);
    labels[m[1]!] = unescapeText(m[2]!, true);
    rest = rest.slice(m[0].length);
  }
  return labels;
}

export function parsePrometheusText(text: string): Map<string, ParsedFamily> {
  if (text !== '' && !text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map<string, ParsedFamily>();
  let current: ParsedFamily | undefined;
  for (const line of text.split('\n').slice(0, -1)) {
    // The text format ignores empty lines (prom-client writes one between families).
    if (line === '') continue;
    const help = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
    const type = new RegExp(`^# TYPE (${NAME}) (\\w+)$`).exec(line);
    if (help) {
      if (families.has(help[1]!)) throw new Error(`HELP for ${help[1]} twice`);
      current = { name: help[1]!, help: unescapeText(help[2]!, false), type: '', samples: [] };
      families.set(current.name, current);
    } else if (type) {
      if (current === undefined || current.name !== type[1] || current.type !== '' || current.samples.length > 0)
        throw new Error(`misplaced TYPE ${type[1]}`);
      if (!TYPES.has(type[2]!)) throw new Error(`unknown type ${type[2]}`);
      current.type = type[2]!;
    } else {
      const sample = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`).exec(line);
      if (!sample) throw new Error(`not a sample: "${line}"`);
      if (current === undefined || sample[1] !== current.name || current.type === '')
        throw new Error(`sample outside its family: "${line}"`);
      current.samples.push({ labels: parseLabels(sample[2] ?? ''), value: parseValue(sample[3]!) });
    }
  }
  return families;
}
