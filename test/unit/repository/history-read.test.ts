// Reading the history records (failed runs, rehearsals) from a local-directory repository: a record that
// cannot be read fails the read by default, and with onUnreadable is reported by key and left out while
// the others are read; keys that are not records are passed over as before.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RepositoryError } from '../../../src/errors.js';
import {
  commitRehearsal,
  listBackupFailures,
  listRehearsals,
  recordBackupFailure,
  unreadableRecordWarning,
  type UnreadableHistoryRecord,
} from '../../../src/repository/history.js';
import { failureKey, rehearsalKey } from '../../../src/repository/layout.js';
import { openRepository } from '../../../src/repository/repository.js';
import { DAY, failure, HOUR, rehearsal, SEG } from '../status/fixtures.js';

async function repositoryWithHistory() {
  const repo = await openRepository(join(mkdtempSync(join(tmpdir(), 'pgbb-history-')), 'repo'));
  await repo.claim({ systemIdentifier: '7443990000000000001', majorVersion: 17, walSegmentSize: SEG });
  const good = { rehearsal: rehearsal(HOUR, 'pass'), failure: failure(DAY) };
  await commitRehearsal(repo, good.rehearsal);
  await recordBackupFailure(repo, good.failure);
  return { repo, good };
}

describe('listRehearsals and listBackupFailures with unreadable records', () => {
  it('fail by default, and with onUnreadable leave the record out, naming its key and why', async () => {
    const { repo, good } = await repositoryWithHistory();
    await using _ = repo;
    const badRehearsal = rehearsalKey(rehearsal(2 * HOUR, 'fail').id);
    const badFailure = failureKey(failure(2 * DAY).id);
    await repo.storage.put(badRehearsal, Buffer.from('{"formatVersion": 1, "id": "cut'));
    await repo.storage.put(badFailure, Buffer.from('[]'));
    await repo.storage.put('failures/not-a-record.txt', Buffer.from('ignored'));

    await expect(listRehearsals(repo)).rejects.toBeInstanceOf(RepositoryError);
    await expect(listBackupFailures(repo)).rejects.toThrow(`the repository object "${badFailure}" is not a JSON object`);

    const seen: UnreadableHistoryRecord[] = [];
    const options = { onUnreadable: (u: UnreadableHistoryRecord) => seen.push(u) };
    expect(await listRehearsals(repo, options)).toEqual([good.rehearsal]);
    expect(await listBackupFailures(repo, options)).toEqual([good.failure]);
    expect(seen).toEqual([
      {
        key: badRehearsal,
        kind: 'rehearsal',
        id: badRehearsal.slice('rehearsals/'.length, -'.json'.length),
        reason: `the repository object "${badRehearsal}" is not valid JSON`,
      },
      {
        key: badFailure,
        kind: 'failure',
        id: badFailure.slice('failures/'.length, -'.json'.length),
        reason: `the repository object "${badFailure}" is not a JSON object`,
      },
    ]);
    expect(unreadableRecordWarning(seen[1]!)).toBe(
      `skipped the unreadable history record "${badFailure}": the repository object "${badFailure}" is not a JSON object`,
    );
  });

  it('an object larger than a record can be is unreadable too', async () => {
    const { repo, good } = await repositoryWithHistory();
    await using _ = repo;
    const big = failureKey(failure(3 * DAY).id);
    await repo.storage.put(big, Buffer.alloc(8 << 20, 0x20));
    const seen: string[] = [];
    expect(await listBackupFailures(repo, { onUnreadable: (u) => seen.push(u.reason) })).toEqual([good.failure]);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(new RegExp(`^the repository object "${big}" is larger than a record can be`));
  });
});
