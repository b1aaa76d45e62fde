/**
 * An archive_command for test clusters that publishes each segment atomically: copied under a hidden
 * temporary name, then renamed. A plain `cp %p DIR/%f` lets a concurrent reader (a restore_command, or
 * a restore's pre-flight) see a half-copied segment, which PostgreSQL rightly refuses ("has wrong size").
 */
export function atomicArchiveCommand(dir: string): string {
  return `cp %p ${dir}/.%f.tmp && mv ${dir}/.%f.tmp ${dir}/%f`;
}
