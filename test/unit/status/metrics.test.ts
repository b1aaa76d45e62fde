// The metrics: their values from a repository snapshot, the text format (read back by a strict parser),
// and registration on a real prom-client registry (a devDependency; for users it is an optional peer that
// the package never imports), read back as prom-client writes it.
import { Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parseLsn } from '../../../src/lsn.js';
import { repositoryMetrics, type MetricFamily } from '../../../src/status/metrics.js';
import { formatPrometheus, registerMetrics } from '../../../src/status/prometheus.js';
import { backup, DAY, failure, HOUR, NOW, rehearsal, SEG, segments, state } from './fixtures.js';
import { parsePrometheusText } from './prometheus-parser.js';

const sampleValue = (families: MetricFamily[], name: string, labels: Record<string, string> = {}) =>
  families.find((f) => f.name === name)?.samples.find((s) => JSON.stringify(s.labels) === JSON.stringify(labels))?.value;

describe('repositoryMetrics', () => {
  const full = backup(2 * HOUR, 2);
  const incremental = { ...backup(HOUR, 6), id: '20261206-105900.000I', type: 'incremental' as const, parent: full.id, durationMs: 5000 };
  const passed = rehearsal(DAY, 'pass');
  const s = state({
    backups: [full, incremental],
    failures: [failure(30 * 60_000)],
    rehearsals: [passed],
    walSegments: segments(2, 9, 10 * 60_000),
    server: { lsn: parseLsn(`0/${(12 * SEG).toString(16)}`), timeline: 1 },
  });
  const families = repositoryMetrics(s, NOW);

  it('has the figures the issue asks for', () => {
    expect(sampleValue(families, 'pgbb_last_success_timestamp_seconds', { kind: 'full' })).toBe(full.endTime.getTime() / 1000);
    expect(sampleValue(families, 'pgbb_last_success_duration_seconds', { kind: 'incremental' })).toBe(5);
    expect(sampleValue(families, 'pgbb_last_success_duration_seconds', { kind: 'rehearsal' })).toBe(90);
    expect(sampleValue(families, 'pgbb_backups', { type: 'full' })).toBe(1);
    expect(sampleValue(families, 'pgbb_backups', { type: 'incremental' })).toBe(1);
    expect(sampleValue(families, 'pgbb_backups_stored_bytes')).toBe(8_000_000);
    expect(sampleValue(families, 'pgbb_last_backup_original_bytes', { kind: 'full' })).toBe(30_000_000);
    expect(sampleValue(families, 'pgbb_backup_failures_since_success')).toBe(1);
    expect(sampleValue(families, 'pgbb_wal_archive_segments')).toBe(8);
    expect(sampleValue(families, 'pgbb_wal_archive_gaps')).toBe(0);
    expect(sampleValue(families, 'pgbb_wal_archive_lag_seconds')).toBe(600);
    expect(sampleValue(families, 'pgbb_wal_archive_lag_bytes')).toBe(2 * SEG);
    expect(sampleValue(families, 'pgbb_pitr_window_start_timestamp_seconds')).toBe(full.endTime.getTime() / 1000);
    expect(sampleValue(families, 'pgbb_pitr_window_end_timestamp_seconds')).toBe(s.walSegments.at(-1)!.storedAt.getTime() / 1000);
    expect(sampleValue(families, 'pgbb_rehearsal_last_success')).toBe(1);
    expect(sampleValue(families, 'pgbb_rehearsal_recovery_seconds')).toBe(60);
    expect(sampleValue(families, 'pgbb_rehearsal_recovery_point_lag_seconds')).toBe(600);
    expect(sampleValue(families, 'pgbb_rehearsal_recovery_point_timestamp_seconds')).toBe(passed.lastTransactionTime!.getTime() / 1000);
  });

  it('leaves out what is not known, and reports a failed rehearsal as 0', () => {
    const empty = repositoryMetrics(state({ backups: [], rehearsals: [rehearsal(HOUR, 'fail')] }), NOW);
    expect(empty.find((f) => f.name === 'pgbb_last_success_timestamp_seconds')?.samples).toEqual([]);
    expect(empty.find((f) => f.name === 'pgbb_wal_archive_lag_bytes')?.samples).toEqual([]);
    expect(sampleValue(empty, 'pgbb_rehearsal_last_success')).toBe(0);
    expect(empty.find((f) => f.name === 'pgbb_rehearsal_recovery_seconds')?.samples).toEqual([]);
  });

  it('the text format parses with a strict parser, every family and sample intact', () => {
    const text = formatPrometheus(families);
    const parsed = parsePrometheusText(text);
    expect([...parsed.keys()]).toEqual(families.map((f) => f.name));
    for (const f of families) {
      const p = parsed.get(f.name)!;
      expect(p).toEqual({
        name: f.name,
        help: f.help,
        type: 'gauge',
        samples: f.samples.map((x) => ({ labels: x.labels, value: x.value })),
      });
    }
    expect(text).toMatch(/^pgbb_backups\{type="full"\} 1$/m);
  });

  it('escapes help and label values', () => {
    const text = formatPrometheus([
      { name: 'x_y', help: 'a\\b\nc', type: 'gauge', samples: [{ labels: { l: 'q"\\\n' }, value: Number.POSITIVE_INFINITY }] },
    ]);
    expect(text).toBe('# HELP x_y a\\\\b\\nc\n# TYPE x_y gauge\nx_y{l="q\\"\\\\\\n"} +Inf\n');
    expect(parsePrometheusText(text).get('x_y')).toEqual({
      name: 'x_y',
      help: 'a\\b\nc',
      type: 'gauge',
      samples: [{ labels: { l: 'q"\\\n' }, value: Number.POSITIVE_INFINITY }],
    });
    expect(() => parsePrometheusText('x 1\n')).toThrow(/outside its family/);
  });
});

describe('registerMetrics', () => {
  it('registers every family once on a prom-client Registry and updates the values on later calls', async () => {
    const registry = new Registry();
    const first = repositoryMetrics(state(), NOW);
    registerMetrics(registry, first);
    expect(registry.getMetricsAsArray().map((m) => m.name)).toEqual(first.map((f) => f.name));
    const later = repositoryMetrics(state({ backups: [backup(HOUR, 2), backup(10 * 60_000, 4)] }), NOW);
    registerMetrics(registry, later);
    expect(registry.getMetricsAsArray()).toHaveLength(later.length);
    // prom-client's own text output, read by the strict parser.
    const parsed = parsePrometheusText(await registry.metrics());
    expect(parsed.get('pgbb_backups')?.samples).toEqual([
      { labels: { type: 'full' }, value: 2 },
      { labels: { type: 'incremental' }, value: 0 },
    ]);
    expect(parsed.get('pgbb_backups')?.type).toBe('gauge');
    expect([...parsed.keys()].sort()).toEqual(later.map((f) => f.name).sort());
  });

  it("sits beside the application's own metrics; a name registered by something else is refused by prom-client", async () => {
    const registry = new Registry();
    const own = new Gauge({ name: 'app_requests', help: 'requests', registers: [registry] });
    own.set(3);
    registerMetrics(registry, repositoryMetrics(state(), NOW));
    expect(parsePrometheusText(await registry.metrics()).get('app_requests')?.samples).toEqual([{ labels: {}, value: 3 }]);
    const clash = new Registry();
    new Gauge({ name: 'pgbb_backups', help: 'not ours', registers: [clash] });
    expect(() => registerMetrics(clash, repositoryMetrics(state(), NOW))).toThrow(/already been registered/);
  });
});
