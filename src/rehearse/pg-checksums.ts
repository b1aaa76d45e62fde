/**
 * `pg_checksums --check` on the stopped restored cluster: every page of every data file verified,
 * including those no query reads. Used when the binaries of the backup's major ship the tool.
 * @module
 */
import { execFile } from 'node:child_process';
import type { CheckOutcome } from './checks.js';
import type { OsIdentity } from './run-as.js';

/** Run `pg_checksums --check -D dataDir` (as `runAs`); its failures become the outcome's problems. */
export function runPgChecksums(tool: string, dataDir: string, runAs: OsIdentity | undefined, signal: AbortSignal): Promise<CheckOutcome> {
  return new Promise((resolve, reject) => {
    execFile(
      tool,
      ['--check', '-D', dataDir],
      {
        signal,
        cwd: '/',
        env: { ...process.env, LC_ALL: 'C' },
        maxBuffer: 16 * 1024 * 1024,
        ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
      },
      (err, stdout, stderr) => {
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        const out = `${stdout}${stderr}`;
        const bad = /Bad checksums:\s+(\d+)/.exec(out)?.[1];
        const scanned = /Blocks scanned:\s+(\d+)/.exec(out)?.[1];
        if (!err) {
          resolve({ status: 'passed', detail: `pg_checksums: ${scanned ?? '?'} blocks scanned, no bad checksum`, problems: [] });
          return;
        }
        const problems = out
          .split('\n')
          .filter((l) => /checksum verification failed|error/i.test(l))
          .slice(0, 50);
        resolve({
          status: 'failed',
          detail: `pg_checksums: ${bad ?? 'some'} bad checksums in ${scanned ?? '?'} blocks`,
          problems: problems.length > 0 ? problems : [out.trim().slice(-500)],
        });
      },
    );
  });
}
