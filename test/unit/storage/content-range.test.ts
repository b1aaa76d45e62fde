// contentRangeProblem: a ranged GET's answer must be the range asked for, or the same range cut at the
// object's end; anything else (no Content-Range, another start, a longer answer) is named.
import { describe, expect, it } from 'vitest';
import { contentRangeProblem } from '../../../src/storage/s3.js';

describe('contentRangeProblem', () => {
  it('accepts the range asked for, and the range cut at the end of the object', () => {
    expect(contentRangeProblem('bytes 1000-5999/100000', { offset: 1000, length: 5000 })).toBeUndefined();
    expect(contentRangeProblem('bytes 0-0/100000', { offset: 0, length: 1 })).toBeUndefined();
    expect(contentRangeProblem('bytes 99000-99999/100000', { offset: 99_000, length: 5000 })).toBeUndefined();
    expect(contentRangeProblem('bytes 99990-99999/100000', { offset: 99_990 })).toBeUndefined();
    expect(contentRangeProblem('bytes 10-19/*', { offset: 10, length: 10 })).toBeUndefined();
  });

  it('names an answer without Content-Range, another start, a longer or shorter end', () => {
    expect(contentRangeProblem(undefined, { offset: 0, length: 1 })).toBe(
      'the server ignored the byte range (asked bytes 0-0, answered the whole object)',
    );
    expect(contentRangeProblem('bytes 0-99999/100000', { offset: 0, length: 1 })).toBe(
      'the server answered another byte range (asked bytes 0-0, answered "bytes 0-99999/100000")',
    );
    expect(contentRangeProblem('bytes 0-5999/100000', { offset: 1000, length: 5000 })).toMatch(/another byte range/);
    // Shorter than asked although the object goes on.
    expect(contentRangeProblem('bytes 1000-4999/100000', { offset: 1000, length: 5000 })).toMatch(/another byte range/);
    // An open range must run to the object's end.
    expect(contentRangeProblem('bytes 10-19/100', { offset: 10 })).toMatch(/another byte range/);
    expect(contentRangeProblem('items 0-1/2', { offset: 0, length: 2 })).toMatch(/ignored the byte range/);
  });
});
