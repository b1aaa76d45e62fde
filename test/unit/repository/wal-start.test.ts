// Where receive-wal --repo resumes: the repository's complete segments and the spool's .partial together
// (walStartFiles), decided by findArchiveStart, as the store lists them.
import { describe, expect, it } from 'vitest';
import { findArchiveStart, type ArchiveFile } from '../../../src/archive/start.js';
import { formatLsn } from '../../../src/lsn.js';
import { walStartFiles } from '../../../src/repository/wal-start.js';

const SEG = 16 * 1024 * 1024;
const stored = (name: string, bytes = SEG): ArchiveFile => ({ name, bytes });
const spooled = (name: string, bytes = 1234): ArchiveFile => ({ name: `${name}.partial`, bytes });

async function start(repo: ArchiveFile[], spool: ArchiveFile[]) {
  const found = await findArchiveStart(walStartFiles(repo, spool, SEG), {
    segmentSize: SEG,
    // Compressed objects are decompressed by the store; here they hold a whole segment.
    uncompressedBytes: async () => SEG,
  });
  return found && { lsn: formatLsn(found.startLsn), timeline: found.timeline, basedOn: found.basedOn, partial: found.partial };
}

describe('receive-wal --repo start position', () => {
  it('nothing stored, nothing spooled: no start (the slot decides)', async () => {
    expect(await start([], [])).toBeUndefined();
    expect(await start([stored('00000002.history', 42)], [])).toBeUndefined();
  });

  it('after the newest complete segment in the repository, whatever its compression', async () => {
    expect(await start([stored('000000010000000000000003.zst', 900), stored('000000010000000000000004.gz', 1000)], [])).toEqual({
      lsn: '0/5000000',
      timeline: 1,
      basedOn: '000000010000000000000004.gz',
      partial: false,
    });
  });

  it('the highest timeline wins at the same segment', async () => {
    expect(await start([stored('000000010000000000000005'), stored('000000020000000000000005')], [])).toMatchObject({
      lsn: '0/6000000',
      timeline: 2,
    });
  });

  it("at the spool's .partial when it is the segment after the newest stored one, or nothing is stored", async () => {
    expect(await start([stored('000000010000000000000004')], [spooled('000000010000000000000005')])).toEqual({
      lsn: '0/5000000',
      timeline: 1,
      basedOn: '000000010000000000000005.partial',
      partial: true,
    });
    expect(await start([], [spooled('000000010000000000000009')])).toMatchObject({ lsn: '0/9000000', partial: true });
  });

  it('a stored segment wins over a stale .partial of it or of an earlier one', async () => {
    expect(
      await start([stored('000000010000000000000005')], [spooled('000000010000000000000005'), spooled('000000010000000000000003')]),
    ).toMatchObject({ lsn: '0/6000000', partial: false, basedOn: '000000010000000000000005' });
  });

  it('at a timeline switch, the new timeline’s .partial wins over the old one’s', async () => {
    expect(
      await start([stored('000000010000000000000004')], [spooled('000000010000000000000005'), spooled('000000020000000000000005')]),
    ).toMatchObject({ lsn: '0/5000000', timeline: 2, partial: true });
  });

  it('ignores a .partial further ahead than the next segment: resuming there would leave a silent hole', async () => {
    const files = walStartFiles([stored('000000010000000000000004')], [spooled('000000010000000000000007')], SEG);
    expect(files.map((f) => f.name)).toEqual(['000000010000000000000004']);
    expect(await start([stored('000000010000000000000004')], [spooled('000000010000000000000007')])).toMatchObject({
      lsn: '0/5000000',
      partial: false,
    });
  });
});
