import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { formatStorageAddress, parseStorageUrl } from '../../../src/storage/url.js';

describe('parseStorageUrl', () => {
  it('takes anything without a scheme as a local path', () => {
    expect(parseStorageUrl('/backups/main')).toEqual({ kind: 'local', path: '/backups/main' });
    expect(parseStorageUrl('./repo')).toEqual({ kind: 'local', path: './repo' });
    expect(parseStorageUrl('C:repo?x=1')).toEqual({ kind: 'local', path: 'C:repo?x=1' });
  });

  it('reads file:// URLs as local paths', () => {
    expect(parseStorageUrl('file:///backups/my%20repo')).toEqual({ kind: 'local', path: '/backups/my repo' });
    expect(parseStorageUrl('file://localhost/r')).toEqual({ kind: 'local', path: '/r' });
    expect(() => parseStorageUrl('file://host/r')).toThrow(/local path/);
  });

  it('reads bucket, prefix and the S3-compatible settings', () => {
    expect(parseStorageUrl('s3://backups/db1/main?endpoint=http://127.0.0.1:8080/&region=eu-west-3&forcePathStyle=true')).toEqual({
      kind: 's3',
      bucket: 'backups',
      prefix: 'db1/main/',
      endpoint: 'http://127.0.0.1:8080',
      region: 'eu-west-3',
      forcePathStyle: true,
    });
    expect(parseStorageUrl('s3://backups')).toEqual({ kind: 's3', bucket: 'backups', prefix: '', forcePathStyle: false });
    expect(parseStorageUrl('S3://backups//a///b/')).toEqual({ kind: 's3', bucket: 'backups', prefix: 'a/b/', forcePathStyle: false });
    expect(parseStorageUrl('s3://My_Bucket/p%20q?forcePathStyle=false')).toMatchObject({
      bucket: 'My_Bucket',
      prefix: 'p q/',
      forcePathStyle: false,
    });
    expect(parseStorageUrl('s3://b.e-t/x?endpoint=https%3A%2F%2Fs3.example.com%2Fbase')).toMatchObject({
      endpoint: 'https://s3.example.com/base',
    });
  });

  it.each([
    ['', /empty/],
    ['http://bucket/x', /unsupported scheme "http:\/\/"/],
    ['s3://', /no bucket/],
    ['s3:///prefix', /no bucket/],
    ['s3://ab', /not a valid bucket name/],
    ['s3://-bucket', /not a valid bucket name/],
    ['s3://bucket/../x', /"\." or "\.\."/],
    ['s3://bucket/x?endpoint=ftp://h', /http:\/\/ or https:\/\//],
    ['s3://bucket/x?endpoint=not a url', /not a URL/],
    ['s3://bucket/x?region=us east', /invalid region/],
    ['s3://bucket/x?forcePathStyle=yes', /true or false/],
    ['s3://bucket/x?bucket=other', /unknown parameter "bucket"/],
    ['s3://bucket/x?region=a&region=b', /appears twice/],
    ['s3://bucket/x#frag', /fragment/],
  ])('refuses %j', (address, message) => {
    expect(() => parseStorageUrl(address)).toThrow(ConfigError);
    expect(() => parseStorageUrl(address)).toThrow(message);
  });

  it('refuses credentials in the address without repeating them', () => {
    for (const address of ['s3://AKIAEXAMPLE:s3cr3tvalue@bucket/p', 's3://bucket/p?endpoint=http://AKIAEXAMPLE:s3cr3tvalue@host:9000']) {
      let error: unknown;
      try {
        parseStorageUrl(address);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/must not contain credentials/);
      expect((error as Error).message).not.toContain('s3cr3tvalue');
      expect((error as Error).message).not.toContain('AKIAEXAMPLE');
    }
  });

  it('formats an address for messages', () => {
    expect(formatStorageAddress(parseStorageUrl('s3://backups/db1?region=eu-west-3'))).toBe('s3://backups/db1/');
    expect(formatStorageAddress(parseStorageUrl('/r'))).toBe('/r');
  });
});
