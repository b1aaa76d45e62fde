/**
 * Metric families out: the Prometheus text exposition format (version 0.0.4), and registration on a
 * prom-client registry. prom-client is an optional peer that this package never imports: a registry is
 * accepted by its shape, and each family is registered as an object with the shape prom-client's
 * registry reads (`name`, `help`, `type`, `aggregator`, `get()`).
 * @module
 */
import type { MetricFamily, MetricSample } from './metrics.js';

function escapeHelp(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('\n', '\\n');
}

function escapeLabelValue(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function formatSample(name: string, sample: MetricSample): string {
  const labels = Object.entries(sample.labels);
  const text = labels.length === 0 ? '' : `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
  return `${name}${text} ${formatValue(sample.value)}\n`;
}

/** The families in the Prometheus text format: `# HELP`, `# TYPE`, then one line per sample. */
export function formatPrometheus(families: readonly MetricFamily[]): string {
  return families
    .map(
      (f) =>
        `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n${f.samples.map((s) => formatSample(f.name, s)).join('')}`,
    )
    .join('');
}

/** What prom-client's registry reads from a registered metric (its `Metric` shape, structurally). */
export interface PromMetricLike {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge';
  readonly aggregator: 'first';
  get(): Promise<{
    name: string;
    help: string;
    type: 'gauge';
    aggregator: 'first';
    values: { value: number; labels: Record<string, string> }[];
  }>;
  reset(): void;
}

/**
 * A prom-client `Registry`, or anything with the methods used here. `registerMetric` takes a
 * {@link PromMetricLike}; its parameter is typed `never` so that prom-client's own declaration (a generic
 * `Metric<T>`, which a structural object is not) is accepted as it is, with no cast at the call site.
 */
export interface PromRegistryLike {
  registerMetric(metric: never): void;
  getSingleMetric(name: string): unknown;
}

/** The metrics this module registered, per registry: later calls update them instead of registering again. */
const registered = new WeakMap<object, Map<string, { metric: PromMetricLike; samples: MetricSample[] }>>();

/**
 * Puts `families` on `registry` (prom-client's `register` or a `new Registry()`); called again, it
 * updates the values of the metrics it registered. A metric of the same name registered by something
 * else makes prom-client throw, as for any duplicate.
 */
export function registerMetrics(registry: PromRegistryLike, families: readonly MetricFamily[]): void {
  let mine = registered.get(registry);
  if (mine === undefined) registered.set(registry, (mine = new Map()));
  for (const family of families) {
    const held = mine.get(family.name);
    if (held !== undefined && registry.getSingleMetric(family.name) === held.metric) {
      held.samples = family.samples;
      continue;
    }
    const entry: { metric: PromMetricLike; samples: MetricSample[] } = { metric: undefined as never, samples: family.samples };
    const { name, help } = family;
    entry.metric = {
      name,
      help,
      type: 'gauge',
      aggregator: 'first',
      get: async () => ({
        name,
        help,
        type: 'gauge',
        aggregator: 'first',
        values: entry.samples.map((s) => ({ value: s.value, labels: { ...s.labels } })),
      }),
      reset: () => {
        entry.samples = [];
      },
    };
    // prom-client reads a registered metric through name, help, type, aggregator, get() and reset() only.
    (registry.registerMetric as (metric: PromMetricLike) => void).call(registry, entry.metric);
    mine.set(name, entry);
  }
}
