import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = join(import.meta.dirname, '../../../src/storage');
const sources = readdirSync(dir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ file: f, text: readFileSync(join(dir, f), 'utf8') }));

describe('the AWS SDK is loaded lazily', () => {
  it('src/storage imports @aws-sdk only as types or with a dynamic import()', () => {
    const staticImports = sources.flatMap(({ file, text }) =>
      [...text.matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?from\s+'(@aws-sdk\/[^']+)'/gms)]
        .filter((m) => m[2] === undefined)
        .map((m) => `${file}: ${m[3]}`),
    );
    expect(staticImports).toEqual([]);
    // The rule sees what it is about: s3.ts does use the SDK, through import().
    const s3 = sources.find((s) => s.file === 's3.ts')!.text;
    expect(s3).toContain("import('@aws-sdk/client-s3')");
    expect(s3).toMatch(/^import type \* as S3 from '@aws-sdk\/client-s3';$/m);
  });
});
