/**
 * `pgbb verify --repo REPO [ID]`: the library's `verifyRepository`, printed as `pgbb verify` prints
 * findings (`pgbb verify: error: ...` on stderr; JSON lines on stdout with `--json`). Loaded only when
 * `--repo` is given, so that verifying a directory does not load the repository code.
 * @module
 */
import { openRepository, verifyRepository, type RepositoryFinding } from '../entries/repository.js';
import type { CliContext } from './context.js';
import type { Reporter } from './output.js';

const PROG = 'pgbb verify';

function findingJson(f: RepositoryFinding): Record<string, unknown> {
  return {
    event: 'finding',
    kind: f.kind,
    backup: f.backup,
    path: f.path,
    message: f.message,
    ...(f.detail !== undefined ? { detail: f.detail } : {}),
  };
}

/** What `pgbb verify --repo` was asked. */
export interface VerifyRepoRequest {
  address: string;
  /** One backup, or all. */
  id: string | undefined;
  skipChecksums: boolean;
  noWal: boolean;
  quiet: boolean;
}

/** Runs `pgbb verify --repo`; resolves to the exit status (1 when anything was found). */
export async function verifyRepositoryCli(target: VerifyRepoRequest, ctx: CliContext, mode: Reporter['mode']): Promise<number> {
  await using repository = await openRepository(target.address);
  const result = await verifyRepository(repository, {
    id: target.id,
    skipChecksums: target.skipChecksums,
    noWal: target.noWal,
    signal: ctx.signal,
    onFinding: (f) => {
      if (mode === 'json') ctx.stdout.write(`${JSON.stringify(findingJson(f))}\n`);
      let text = `${PROG}: error: ${f.message}\n`;
      if (f.detail !== undefined) text += `${PROG}: detail: ${f.detail}\n`;
      ctx.stderr.write(text);
    },
  });
  if (mode === 'json') {
    ctx.stdout.write(
      `${JSON.stringify({ event: 'done', ok: result.ok, repository: repository.location, backups: result.backups, walArchive: result.walArchive })}\n`,
    );
  } else if (result.ok && !target.quiet) {
    const wal = result.walArchive.length === 0 ? 'no WAL archive' : `WAL archive on ${result.walArchive.length} timeline(s) without gaps`;
    ctx.stdout.write(`repository successfully verified: ${result.backups.length} backup(s), ${wal}\n`);
  }
  return result.ok ? 0 : 1;
}
