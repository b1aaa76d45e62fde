/**
 * Small helpers for the repository's JSON records: parse bytes into an object, and read typed fields
 * with a {@link RepositoryError} naming the object and the field when one is wrong. Pure.
 * @module
 */
import { RepositoryError } from '../errors.js';

/** A JSON object being decoded, with the key it came from for messages. */
export class RecordReader {
  constructor(
    readonly key: string,
    private readonly object: Record<string, unknown>,
  ) {}

  /** Parses `bytes` as a JSON object. */
  static parse(key: string, bytes: Uint8Array | string): RecordReader {
    let value: unknown;
    try {
      value = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
    } catch (cause) {
      throw new RepositoryError(`the repository object "${key}" is not valid JSON`, { key, cause });
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new RepositoryError(`the repository object "${key}" is not a JSON object`, { key });
    }
    return new RecordReader(key, value as Record<string, unknown>);
  }

  fail(field: string, what: string): never {
    throw new RepositoryError(`the repository object "${this.key}" has an invalid "${field}": ${what}`, { key: this.key });
  }

  has(field: string): boolean {
    return this.object[field] !== undefined && this.object[field] !== null;
  }

  string(field: string): string {
    const v = this.object[field];
    if (typeof v !== 'string' || v === '') this.fail(field, 'expected a non-empty string');
    return v;
  }

  /** A string that may be empty; absent reads as empty. */
  text(field: string): string {
    const v = this.object[field] ?? '';
    if (typeof v !== 'string') this.fail(field, 'expected a string');
    return v;
  }

  optionalString(field: string): string | undefined {
    return this.has(field) ? this.string(field) : undefined;
  }

  integer(field: string, min = 0): number {
    const v = this.object[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) this.fail(field, `expected a whole number >= ${min}`);
    return v;
  }

  boolean(field: string): boolean {
    const v = this.object[field];
    if (typeof v !== 'boolean') this.fail(field, 'expected true or false');
    return v;
  }

  strings(field: string): string[] {
    const v = this.object[field];
    if (!Array.isArray(v) || v.some((item) => typeof item !== 'string')) this.fail(field, 'expected an array of strings');
    return v as string[];
  }

  date(field: string): Date {
    const text = this.string(field);
    const d = new Date(text);
    if (Number.isNaN(d.getTime())) this.fail(field, `"${text}" is not a date`);
    return d;
  }

  oneOf<T extends string>(field: string, values: readonly T[]): T {
    const v = this.string(field);
    if (!(values as readonly string[]).includes(v)) this.fail(field, `expected one of ${values.join(', ')}`);
    return v as T;
  }

  child(field: string): RecordReader {
    const v = this.object[field];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(field, 'expected an object');
    return new RecordReader(`${this.key} ${field}`, v as Record<string, unknown>);
  }

  array(field: string): RecordReader[] {
    const v = this.object[field];
    if (!Array.isArray(v)) this.fail(field, 'expected an array');
    return v.map((item, i) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) this.fail(`${field}[${i}]`, 'expected an object');
      return new RecordReader(`${this.key} ${field}[${i}]`, item as Record<string, unknown>);
    });
  }
}

/** A record as the repository stores it: two-space indented JSON and a final newline (read by people too). */
export function encodeRecord(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');
}
