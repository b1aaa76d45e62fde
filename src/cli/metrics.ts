/**
 * `pgbb metrics --repo REPO [-d CONN]`: the repository's gauges in the Prometheus text format on stdout,
 * for node_exporter's textfile collector (write to a temporary file, then rename it into the
 * collector's directory) or a scrape wrapper. The names are documented in docs/operations.md.
 * @module
 */
import { formatPrometheus, repositoryMetrics } from '../entries/status.js';
import { parseArgs, type CommandSpec } from './args.js';
import { connectionOptionSpecs } from './connection-flags.js';
import { defineCommand, type CommandLine } from './context.js';
import { REPO_OPTION } from './repo-flags.js';
import { parseMonitorArgs, readMonitorState, type MonitorCliOptions } from './status.js';

/** The option table of `pgbb metrics`. */
export const METRICS_COMMAND: CommandSpec = {
  prog: 'pgbb metrics',
  summary: 'pgbb metrics prints the figures of a repository in the Prometheus text format.',
  options: [
    REPO_OPTION,
    { key: 'version', short: 'V', long: 'version', help: 'print the version and exit' },
    { key: 'help', short: '?', long: 'help', help: 'print this help and exit' },
    ...connectionOptionSpecs(),
  ],
  epilog: "With a connection (-d), pgbb_wal_archive_lag_bytes compares the archive with the server's position.",
  examples: [
    {
      comment: 'for the node_exporter textfile collector',
      command:
        'pgbb metrics --repo /backups/db1 > /var/lib/node_exporter/pgbb.prom.tmp && mv /var/lib/node_exporter/pgbb.prom.tmp /var/lib/node_exporter/pgbb.prom',
    },
  ],
};

/** Parse `pgbb metrics`'s arguments. Pure; throws `UsageError`. */
export function parseMetricsCommandLine(argv: readonly string[]): CommandLine<MonitorCliOptions> {
  const args = parseArgs(METRICS_COMMAND, argv);
  if (args.has('help')) return { kind: 'help' };
  if (args.has('version')) return { kind: 'version' };
  return { kind: 'run', options: parseMonitorArgs(METRICS_COMMAND, args) };
}

/** `pgbb metrics`. */
export const metricsCommand = defineCommand<MonitorCliOptions>({
  name: 'metrics',
  spec: METRICS_COMMAND,
  parse: parseMetricsCommandLine,
  reporting: (cli) => ({ json: false, connectionString: cli.connection?.connectionString }),
  async execute(cli, run) {
    const state = await readMonitorState(METRICS_COMMAND.prog, cli, run);
    run.ctx.stdout.write(formatPrometheus(repositoryMetrics(state, new Date())));
    return 0;
  },
});
