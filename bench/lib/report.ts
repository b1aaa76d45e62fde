// Results: the JSON shape, the Markdown table and the SVG chart (bars of ours / pg_basebackup per case).
import { execFileSync } from 'node:child_process';
import { cpus, release, totalmem } from 'node:os';
import type { ArchiveLagResult, ArchiveLagSide } from './archive-lag.js';
import type { RehearseOverheadResult } from './rehearse-overhead.js';
import type { Bound } from './bound.js';
import type { SyncMode } from './cases.js';
import type { Sample, Stats } from './measure.js';

export interface SideResult {
  /** The command, program first (the connection string as given). */
  command: string[];
  samples: Sample[];
  wallMs: Stats;
  /** user + system CPU time. */
  cpuMs: Stats;
  peakRssBytes: Stats;
  /** Database size / median wall time. */
  throughputMBps: number;
  /** Size of what the last run wrote (directory), in bytes. */
  outputBytes: number | undefined;
}

export interface CaseResult {
  id: string;
  title: string;
  /** For cases that write files: with -N (`nosync`) or with fsync. */
  sync?: SyncMode;
  /** Client-side compression (its CPU is expected to exceed the reference's less than 1.3x only where noted). */
  compressed?: boolean;
  status: 'ok' | 'not available' | 'failed';
  /** Why not available, or the failure. */
  reason?: string;
  ours?: SideResult;
  /** The reference tool; absent when it cannot run against this server. */
  reference?: SideResult;
  /** Median ratios ours / reference. */
  ratio?: { wall: number; cpu: number; peakRss: number };
  /** What bounded each tool's run (see bound.ts). */
  bound?: { ours: Bound; reference?: Bound };
}

export interface DatasetResult {
  cluster: string;
  serverVersion: string;
  /** Why there are no ratios for this cluster, if so. */
  referenceNote?: string;
  /** Requested size and measured sum of pg_database_size. */
  requestedBytes: number;
  databaseBytes: number;
  cases: CaseResult[];
  /** The archive-lag case, when it was asked for. */
  archiveLag?: ArchiveLagResult;
  /** The rehearse case, when it was asked for. */
  rehearse?: RehearseOverheadResult;
}

export interface BenchResult {
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: { cpu: string; cores: number; memoryBytes: number; kernel: string };
  /** 1-minute load average at the start and the end: other work on the machine skews wall times. */
  loadAverage?: { start: number; end: number };
  versions: { node: string; pgbb: string; pgBasebackup: string; pgVerifybackup: string; pgReceivewal?: string; git: string };
  settings: { runs: number; warmup: number; syncModes: SyncMode[]; order: string };
  datasets: DatasetResult[];
}

function tryRun(program: string, args: string[]): string {
  try {
    return execFileSync(program, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export function machineInfo(): BenchResult['machine'] {
  const c = cpus();
  return { cpu: c[0]?.model ?? 'unknown', cores: c.length, memoryBytes: totalmem(), kernel: release() };
}

export function versionInfo(pgbb: string[], pgBasebackup: string, pgVerifybackup: string, pgReceivewal: string): BenchResult['versions'] {
  const dirty = tryRun('git', ['status', '--porcelain', '--untracked-files=no']) === '' ? '' : ' (with uncommitted changes)';
  return {
    node: tryRun(pgbb[0]!, ['--version']),
    pgbb: tryRun(pgbb[0]!, [...pgbb.slice(1), '--version']),
    pgBasebackup: tryRun(pgBasebackup, ['--version']),
    pgVerifybackup: tryRun(pgVerifybackup, ['--version']),
    pgReceivewal: tryRun(pgReceivewal, ['--version']),
    git: tryRun('git', ['rev-parse', '--short', 'HEAD']) + dirty,
  };
}

const MB = 2 ** 20;
const s = (ms: number): string => (ms / 1000).toFixed(2);
const mb = (b: number): string => (b / MB).toFixed(0);
const range = (st: Stats, f: (n: number) => string): string => `${f(st.median)} (${f(st.min)}–${f(st.max)})`;

function sizeText(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GB` : `${(bytes / MB).toFixed(0)} MB`;
}

/** The Markdown report: machine, versions, command, then one table per cluster and size. */
export function toMarkdown(r: BenchResult): string {
  const lines: string[] = [];
  lines.push(`# pgbb benchmark: ${r.startedAt}`, '');
  lines.push(`Command: \`${r.command}\``, '');
  lines.push(
    `Machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${sizeText(r.machine.memoryBytes)} RAM, Linux ${r.machine.kernel}. ` +
      `Node ${r.versions.node}; ${r.versions.pgbb}; ${r.versions.pgBasebackup}; ${r.versions.pgVerifybackup}; commit ${r.versions.git}.`,
    '',
  );
  if (r.loadAverage) {
    lines.push(
      `Load average (1 min) ${r.loadAverage.start.toFixed(1)} at the start, ${r.loadAverage.end.toFixed(1)} at the end, on ${r.machine.cores} cores` +
        (r.loadAverage.start > r.machine.cores || r.loadAverage.end > r.machine.cores
          ? ': the machine was busy with other work, so wall times are inflated and noisy; compare ratios (same conditions, alternating) and CPU times.'
          : '.'),
      '',
    );
  }
  lines.push(
    `${r.settings.runs} timed runs per tool and case after ${r.settings.warmup} untimed, ${r.settings.order}; ` +
      '`sync` and an emptied target before each run; checkpoint fast; both over TCP to 127.0.0.1, NODE_EXTRA_CA_CERTS unset ' +
      '(it adds ~50 ms to every Node start-up). Standard output goes to /dev/null or to a pipe read by `cat > /dev/null`, with nothing of ' +
      'ours in between. Cases that write files run with -N (`nosync`: CPU and page cache) and with fsync (`fsync`: what a durable ' +
      'backup costs). Wall time in seconds, median (min–max); CPU = user + system of the process, its threads and the children it ' +
      'waited for (GNU time); peak RSS likewise; MB/s = database size (receive-wal: the WAL backlog) / median wall time. Bound: what limited each tool ' +
      '(CPU: busy for at least 80% of its wall time; server: waiting on the walsender; disk: the fsync run took over 25% longer than ' +
      'the same case with -N), pgbb / reference.',
    '',
  );
  for (const d of r.datasets) {
    lines.push(`## ${d.cluster} (${d.serverVersion}), ${sizeText(d.databaseBytes)} of data (asked ${sizeText(d.requestedBytes)})`, '');
    if (d.referenceNote) lines.push(d.referenceNote, '');
    lines.push(
      '| case | sync | pgbb wall s | reference wall s | wall ratio | pgbb CPU s | ref CPU s | CPU ratio | bound | pgbb MB/s | ref MB/s | pgbb peak RSS MB | ref peak RSS MB |',
    );
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const c of d.cases) {
      const sync = c.sync ?? '—';
      if (c.status !== 'ok' || !c.ours) {
        lines.push(`| ${c.title} | ${sync} | ${c.status}: ${(c.reason ?? '').split('\n')[0]?.slice(0, 120)} | | | | | | | | | | |`);
        continue;
      }
      const o = c.ours;
      const p = c.reference;
      const bound = c.bound ? `${c.bound.ours}${c.bound.reference ? ` / ${c.bound.reference}` : ''}` : '—';
      lines.push(
        `| ${c.title} | ${sync} | ${range(o.wallMs, s)} | ${p ? range(p.wallMs, s) : '—'} | ${c.ratio ? `**${c.ratio.wall.toFixed(2)}**` : '—'} | ` +
          `${range(o.cpuMs, s)} | ${p ? range(p.cpuMs, s) : '—'} | ${c.ratio ? `**${c.ratio.cpu.toFixed(2)}**` : '—'} | ${bound} | ` +
          `${o.throughputMBps.toFixed(0)} | ${p ? p.throughputMBps.toFixed(0) : '—'} | ` +
          `${range(o.peakRssBytes, mb)} | ${p ? range(p.peakRssBytes, mb) : '—'} |`,
      );
    }
    lines.push('');
    if (d.archiveLag) lines.push(...archiveLagLines(d.archiveLag));
    if (d.rehearse) lines.push(...rehearseLines(d.rehearse));
  }
  const memory = memoryRows(r);
  if (memory.length > 1) {
    lines.push('## Peak RSS of pgbb by data size', '', `| cluster | case | ${memory.map((m) => sizeText(m.bytes)).join(' | ')} |`);
    lines.push(`|---|---|${memory.map(() => '---|').join('')}`);
    const keys = new Set(memory.flatMap((m) => [...m.rss.keys()]));
    for (const k of keys) {
      const [cluster, id] = k.split('|');
      lines.push(
        `| ${cluster} | ${id} | ${memory
          .map((m) => {
            const v = m.rss.get(k);
            return v === undefined ? '—' : `${mb(v)} MB`;
          })
          .join(' | ')} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

function memoryRows(r: BenchResult): { bytes: number; rss: Map<string, number> }[] {
  const bySize = new Map<number, Map<string, number>>();
  for (const d of r.datasets) {
    const m = bySize.get(d.requestedBytes) ?? new Map<string, number>();
    bySize.set(d.requestedBytes, m);
    for (const c of d.cases) if (c.ours) m.set(`${d.cluster}|${c.id}${c.sync ? ` (${c.sync})` : ''}`, c.ours.peakRssBytes.max);
  }
  return [...bySize.entries()].sort((a, b) => a[0] - b[0]).map(([bytes, rss]) => ({ bytes, rss }));
}

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A horizontal bar chart of wall-time ratios (pgbb / pg_basebackup, lower is better) for the cases of
 * the first dataset that has a reference, with the 1.0 target line.
 */
export function toSvg(r: BenchResult): string {
  const d = r.datasets.find((x) => x.cases.some((c) => c.ratio));
  const rows = d ? d.cases.filter((c) => c.ratio) : [];
  const labelW = 210;
  const barW = 420;
  const rowH = 26;
  const top = 48;
  const h = top + rows.length * rowH + 40;
  const w = labelW + barW + 70;
  const maxRatio = Math.max(1.5, ...rows.map((c) => c.ratio!.wall));
  const x = (v: number): number => labelW + (v / maxRatio) * barW;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${w}" height="${h}" fill="#fff"/>`);
  const title = d
    ? `pgbb / pg_basebackup wall time, ${sizeText(d.databaseBytes)}, ${d.serverVersion.split(' (')[0]} (lower is better)`
    : 'no ratios in this run';
  out.push(`<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`);
  out.push(
    `<text x="10" y="37" fill="#555">median of ${r.settings.runs} runs each, alternating; ${esc(r.machine.cpu)}, ${r.machine.cores} cores</text>`,
  );
  rows.forEach((c, i) => {
    const y = top + i * rowH;
    const v = c.ratio!.wall;
    const color = v <= 1.0 ? '#2e7d32' : v <= 1.05 ? '#9e9d24' : '#c62828';
    out.push(`<text x="${labelW - 8}" y="${y + 16}" text-anchor="end">${esc(c.id + (c.sync ? ` (${c.sync})` : ''))}</text>`);
    out.push(`<rect x="${labelW}" y="${y + 4}" width="${(x(v) - labelW).toFixed(1)}" height="${rowH - 8}" fill="${color}"/>`);
    out.push(`<text x="${(x(v) + 4).toFixed(1)}" y="${y + 16}">${v.toFixed(2)}</text>`);
  });
  const bottom = top + rows.length * rowH;
  for (const [v, dash, label] of [[1, '', '1.00']] as const) {
    out.push(`<line x1="${x(v).toFixed(1)}" y1="${top}" x2="${x(v).toFixed(1)}" y2="${bottom}" stroke="#333" stroke-dasharray="${dash}"/>`);
    out.push(`<text x="${x(v).toFixed(1)}" y="${bottom + (v === 1 ? 14 : 28)}" text-anchor="middle" fill="#333">${label}</text>`);
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function archiveLagLines(a: ArchiveLagResult): string[] {
  const head = `### Archive lag under pgbench load${a.load ? ` (pgbench -T ${a.load.seconds} -c ${a.load.clients}, one run per tool)` : ''}`;
  if (a.status !== 'ok') return [head, '', `${a.status}: ${a.reason ?? ''}`, ''];
  const mib = (n: number) => (n / 2 ** 20).toFixed(2);
  const row = (name: string, x: ArchiveLagSide) =>
    `| ${name} | ${mib(x.lagBytes.median)} | ${mib(x.lagBytes.p95)} | ${mib(x.lagBytes.max)} | ${x.lagSeconds.median.toFixed(3)} | ` +
    `${x.lagSeconds.p95.toFixed(3)} | ${x.lagSeconds.max.toFixed(3)} | ${x.catchUpSeconds.toFixed(2)} | ${mib(x.walBytes)} | ` +
    `${x.tps.toFixed(0)} | ${(x.cpuMs / 1000).toFixed(2)} | ${mib(x.peakRssBytes)} |`;
  return [
    head,
    '',
    'Each tool archives (fsync on, `-s 1`) while pgbench writes; pg_stat_replication is read every 0.5 s. Lag MB: the ' +
      "server's WAL flush position minus the write position the archiver last reported; lag s: the server's write_lag. " +
      'Both include up to one status interval (1 s) of reporting delay. Catch-up: from the end of the load until the ' +
      "archiver reported the server's final position.",
    '',
    '| tool | lag MB median | p95 | max | lag s median | p95 | max | catch-up s | WAL MB | tps | CPU s | peak RSS MB |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...(a.ours ? [row('pgbb receive-wal', a.ours)] : []),
    ...(a.reference ? [row('pg_receivewal', a.reference)] : []),
    '',
  ];
}

function rehearseLines(r: RehearseOverheadResult): string[] {
  const head = '### Rehearsal overhead (pgbb rehearse --repo against pgbb restore --repo of the same backup)';
  if (r.status !== 'ok' || !r.restoreWallMs || !r.rehearseWallMs || !r.phasesMs) return [head, '', `${r.status}: ${r.reason ?? ''}`, ''];
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const p = r.phasesMs;
  return [
    head,
    '',
    `Restore: \`${(r.restoreCommand ?? []).join(' ')}\`; rehearsal: \`${(r.rehearseCommand ?? []).join(' ')}\`. ` +
      "Phases are the rehearsal's own step timings (medians over the runs).",
    '',
    '| restore wall s | rehearse wall s | overhead s | its restore s | start s | recovery s | checks s | stop+cleanup s |',
    '|---|---|---|---|---|---|---|---|',
    `| ${s(r.restoreWallMs.median)} | ${s(r.rehearseWallMs.median)} | ${s(r.rehearseWallMs.median - r.restoreWallMs.median)} | ` +
      `${s(p.restore)} | ${s(p.start)} | ${s(p.recovery)} | ${s(p.checks)} | ${s(p.stop)} |`,
    '',
  ];
}
