/**
 * An incremental JSON tokenizer and grammar checker that turns text into structural events
 * (object/array start and end, field names, scalars), like PostgreSQL's `pg_parse_json` with a
 * semantic-action table. Scalars are handed over as their text (strings unescaped, numbers verbatim),
 * so 64-bit integers such as the system identifier keep every digit. Pure.
 * @module
 */

/** What the grammar layer reports, in document order. */
export interface JsonEventHandler {
  objectStart(): void;
  objectEnd(): void;
  arrayStart(): void;
  arrayEnd(): void;
  field(name: string): void;
  /** A string (unescaped), number (as written), or `true`/`false`/`null`. */
  scalar(text: string, kind: 'string' | 'number' | 'literal'): void;
}

/** Thrown for malformed JSON; the caller wraps it with context. */
export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

type Expect = 'value' | 'value-or-close' | 'key-or-close' | 'key' | 'colon' | 'comma-or-close' | 'eof';

const NUMBER_RE = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/;
const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/**
 * Feed text with {@link JsonEvents.write} (any split), then call {@link JsonEvents.end}. Keeps only
 * the unfinished token between writes.
 */
export class JsonEvents {
  private buf = '';
  private pos = 0;
  /** Characters dropped from the front of `buf` so far (for offsets in messages). */
  private base = 0;
  private readonly stack: ('obj' | 'arr')[] = [];
  private expect: Expect = 'value';

  constructor(private readonly handler: JsonEventHandler) {}

  /** Character offset of the next unread character. */
  get offset(): number {
    return this.base + this.pos;
  }

  write(text: string): void {
    this.buf = this.pos < this.buf.length ? this.buf.slice(this.pos) + text : text;
    this.base += this.pos;
    this.pos = 0;
    this.run(false);
  }

  end(): void {
    this.run(true);
    if (this.expect !== 'eof') throw new JsonSyntaxError('the input ends in the middle of the JSON document', this.offset);
  }

  private fail(msg: string, at = this.offset): never {
    throw new JsonSyntaxError(msg, at);
  }

  private run(final: boolean): void {
    const s = this.buf;
    for (;;) {
      let i = this.pos;
      while (i < s.length) {
        const c = s.charCodeAt(i);
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
        else break;
      }
      this.pos = i;
      if (i >= s.length) return;
      const ch = s[i]!;
      if (ch === '{' || ch === '}' || ch === '[' || ch === ']' || ch === ':' || ch === ',') {
        this.pos = i + 1;
        this.punct(ch, i);
        continue;
      }
      if (ch === '"') {
        const r = this.readString(i, final);
        if (r === undefined) return;
        this.pos = r.next;
        this.stringToken(r.value, i);
        continue;
      }
      if (ch === '-' || (ch >= '0' && ch <= '9')) {
        const m = NUMBER_RE.exec(s.slice(i, i + 64));
        if (!m) this.fail(`invalid number at character ${this.base + i}`, this.base + i);
        const text = m[0];
        // The number may continue in the next chunk.
        if (!final && i + text.length >= s.length) return;
        this.pos = i + text.length;
        this.valueToken(text, 'number', i);
        continue;
      }
      const word = /^[a-z]+/.exec(s.slice(i, i + 6))?.[0] ?? '';
      if (word === 'true' || word === 'false' || word === 'null') {
        if (!final && i + word.length >= s.length) return;
        this.pos = i + word.length;
        this.valueToken(word, 'literal', i);
        continue;
      }
      if (!final && i + word.length >= s.length && ('true'.startsWith(word) || 'false'.startsWith(word) || 'null'.startsWith(word))) return;
      this.fail(`unexpected character ${JSON.stringify(ch)} at character ${this.base + i}`, this.base + i);
    }
  }

  /** A complete string token starting at `start`, or `undefined` if it is not finished yet. */
  private readString(start: number, final: boolean): { value: string; next: number } | undefined {
    const s = this.buf;
    let out = '';
    let i = start + 1;
    let runStart = i;
    for (;;) {
      if (i >= s.length) {
        if (final) this.fail('unterminated string', this.base + start);
        return undefined;
      }
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        out += s.slice(runStart, i);
        return { value: out, next: i + 1 };
      }
      if (c < 0x20) this.fail(`control character U+${c.toString(16).padStart(4, '0')} inside a string`, this.base + i);
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += s.slice(runStart, i);
      if (i + 1 >= s.length) {
        if (final) this.fail('unterminated string', this.base + start);
        return undefined;
      }
      const e = s[i + 1]!;
      const simple = SIMPLE_ESCAPES[e];
      if (simple !== undefined) {
        out += simple;
        i += 2;
      } else if (e === 'u') {
        if (i + 6 > s.length) {
          if (final) this.fail('unterminated string', this.base + start);
          return undefined;
        }
        const hex = s.slice(i + 2, i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail(`invalid \\u escape "\\u${hex}"`, this.base + i);
        out += String.fromCharCode(Number.parseInt(hex, 16));
        i += 6;
      } else {
        this.fail(`invalid escape "\\${e}"`, this.base + i);
      }
      runStart = i;
    }
  }

  private punct(ch: string, at: number): void {
    const h = this.handler;
    const top = this.stack[this.stack.length - 1];
    switch (this.expect) {
      case 'value':
      case 'value-or-close':
        if (ch === '{') {
          this.stack.push('obj');
          this.expect = 'key-or-close';
          h.objectStart();
          return;
        }
        if (ch === '[') {
          this.stack.push('arr');
          this.expect = 'value-or-close';
          h.arrayStart();
          return;
        }
        if (ch === ']' && this.expect === 'value-or-close') {
          this.stack.pop();
          h.arrayEnd();
          this.afterValue();
          return;
        }
        break;
      case 'key-or-close':
        if (ch === '}') {
          this.stack.pop();
          h.objectEnd();
          this.afterValue();
          return;
        }
        break;
      case 'colon':
        if (ch === ':') {
          this.expect = 'value';
          return;
        }
        break;
      case 'comma-or-close':
        if (ch === ',') {
          this.expect = top === 'obj' ? 'key' : 'value';
          return;
        }
        if ((ch === '}' && top === 'obj') || (ch === ']' && top === 'arr')) {
          this.stack.pop();
          if (ch === '}') h.objectEnd();
          else h.arrayEnd();
          this.afterValue();
          return;
        }
        break;
      default:
        break;
    }
    this.unexpected(JSON.stringify(ch), at);
  }

  private stringToken(value: string, at: number): void {
    if (this.expect === 'key' || this.expect === 'key-or-close') {
      this.expect = 'colon';
      this.handler.field(value);
      return;
    }
    this.valueToken(value, 'string', at);
  }

  private valueToken(text: string, kind: 'string' | 'number' | 'literal', at: number): void {
    if (this.expect !== 'value' && this.expect !== 'value-or-close')
      this.unexpected(kind === 'string' ? 'a string' : JSON.stringify(text), at);
    this.handler.scalar(text, kind);
    this.afterValue();
  }

  private afterValue(): void {
    this.expect = this.stack.length === 0 ? 'eof' : 'comma-or-close';
  }

  private unexpected(what: string, at: number): never {
    const wanted: Record<Expect, string> = {
      value: 'a value',
      'value-or-close': 'a value or "]"',
      'key-or-close': 'a string or "}"',
      key: 'a string',
      colon: '":"',
      'comma-or-close': '"," or a closing bracket',
      eof: 'the end of input',
    };
    this.fail(`expected ${wanted[this.expect]} but found ${what} at character ${this.base + at}`, this.base + at);
  }
}
